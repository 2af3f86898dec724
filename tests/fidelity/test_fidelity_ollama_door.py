"""The Ollama door (``ollama`` client) over every backend kind: scenarios x kinds x stream.

Each row is checked twice: against what the scenario must give (what the backend received,
what the client got: whole tool calls, ``done_reason``, token counts in the final line), and
against what the same request gives when sent straight to the backend by the client of its
own style (Ollama backend: equal but for times; other styles: equal in meaning).
"""

from __future__ import annotations

from typing import Any

import pytest
from fidelity_clients import direct, via_ollama_door
from fidelity_meaning import OLLAMA_VOLATILE, expected_calls, expected_sent, sent, stable
from fidelity_support import MODELS, OLLAMA_SCENARIOS, STYLE, TOOL_NAMES, Gaps, Rig, Scenario, table

GAPS: Gaps = {}
"""Rows that show a real gap (strict xfail: a fix turns them red)."""
ROWS = table(OLLAMA_SCENARIOS, GAPS)


@pytest.mark.parametrize(("s", "kind", "stream"), ROWS)
def test_ollama_door_as_asked(rig: Rig, s: Scenario, kind: str, stream: bool) -> None:
    """The backend gets the scenario in its style; the ollama client gets whole calls and counts."""
    x = via_ollama_door(rig, s, kind, stream=stream)
    assert len(x.bodies) == 1
    assert sent(STYLE[kind], x.bodies[0]) == expected_sent(s, kind, stream=stream)
    m = x.meaning
    assert m.model == MODELS[kind]
    assert m.text == s.expected_text(kind, rig.fakes[kind].port)
    assert m.calls == expected_calls(s)
    *parts, final = x.raw
    assert [p.done for p in parts] == [False] * len(parts)
    assert final.done is True and final.done_reason == "stop"  # Ollama: stop after calls too
    assert final.prompt_eval_count > 0 and final.eval_count > 0
    calls = [c for p in x.raw for c in p.message.tool_calls or ()]
    assert len(calls) == (2 if s.calls else 0)  # each call whole, once
    assert all(c.function.name in TOOL_NAMES for c in calls)


@pytest.mark.parametrize(("s", "kind", "stream"), ROWS)
def test_ollama_door_as_direct(rig: Rig, s: Scenario, kind: str, stream: bool) -> None:
    """The ollama client gets what the backend gives its own client, converted only by style."""
    via = via_ollama_door(rig, s, kind, stream=stream)
    straight = direct(rig, s, kind, stream=stream, usage=True, from_ollama=True)
    if STYLE[kind] == "ollama":
        assert stable(via.dump, OLLAMA_VOLATILE) == stable(straight.dump, OLLAMA_VOLATILE)
        assert _request(via.bodies[0]) == _request(straight.bodies[0])
        return
    assert via.meaning == straight.meaning
    assert sent(STYLE[kind], via.bodies[0]) == sent(STYLE[kind], straight.bodies[0])


def _request(body: dict[str, Any]) -> dict[str, Any]:
    """A request body; ``tools: []`` (the ``ollama`` client always sends it) is no tools."""
    return {k: v for k, v in body.items() if not (k == "tools" and v == [])}
