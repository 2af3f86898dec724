"""The OpenAI door (``openai`` client) over every backend kind: scenarios x kinds x stream.

Each row is checked twice: against what the scenario must give (both directions: what the
backend received, what the client got), and against what the same request gives when sent
straight to the backend by the client of its own style (same style: equal but for ids and
times, chunk for chunk; other styles: equal in meaning).
"""

from __future__ import annotations

from typing import Any

import pytest
from fidelity_clients import Exchange, direct, via_openai_door
from fidelity_meaning import expected_calls, expected_sent, sent, stable
from fidelity_support import MODELS, SCENARIOS, STYLE, Gaps, Rig, Scenario, table

GAPS: Gaps = {}
"""Rows that show a real gap (strict xfail: a fix turns them red)."""
ROWS = table(SCENARIOS, GAPS)


def _check_usage(x: Exchange, s: Scenario, *, stream: bool) -> None:
    if not stream:
        usage = x.raw[0].usage
        assert usage is not None
        assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        return
    acc = x.openai_stream
    assert acc is not None
    if s.include_usage is True:  # exactly one usage chunk, the last one, with choices: []
        assert len(acc.usage_chunks) == 1, acc.usage_chunks
        chunk = acc.usage_chunks[0]
        assert chunk is acc.chunks[-1] and chunk.choices == []
        assert chunk.usage.prompt_tokens > 0 and chunk.usage.completion_tokens > 0
    else:
        assert acc.usage_chunks == []
        assert all(c.choices for c in acc.chunks), "a chunk with choices: [] not asked for"


def _check_calls(x: Exchange, s: Scenario, *, stream: bool) -> None:
    if stream:
        acc = x.openai_stream
        assert acc is not None
        assert sorted(acc.calls) == ([0, 1] if s.calls else [])
        ids = [c["id"] for c in acc.calls.values()]
    else:
        ids = [c.id for c in x.raw[0].choices[0].message.tool_calls or ()]
    assert all(ids) and len(set(ids)) == len(ids), ids


@pytest.mark.parametrize(("s", "kind", "stream"), ROWS)
def test_openai_door_as_asked(rig: Rig, s: Scenario, kind: str, stream: bool) -> None:
    """The backend gets the scenario in its style; the openai client gets the right reply."""
    x = via_openai_door(rig, s, kind, stream=stream)
    assert x.routed == f"{kind}:one"
    assert len(x.bodies) == 1
    assert sent(STYLE[kind], x.bodies[0]) == expected_sent(s, kind, stream=stream)
    m = x.meaning
    assert m.model == MODELS[kind]
    assert m.text == s.expected_text(kind, rig.fakes[kind].port)
    assert m.calls == expected_calls(s)
    assert m.finish == ("tool_calls" if s.calls else "stop")
    if stream:
        acc = x.openai_stream
        assert acc is not None and acc.finishes == [m.finish]  # one finish chunk
    _check_calls(x, s, stream=stream)
    _check_usage(x, s, stream=stream)


@pytest.mark.parametrize(("s", "kind", "stream"), ROWS)
def test_openai_door_as_direct(rig: Rig, s: Scenario, kind: str, stream: bool) -> None:
    """The openai client gets what the backend gives its own client, converted only by style."""
    via = via_openai_door(rig, s, kind, stream=stream)
    if STYLE[kind] == "openai":
        straight = direct(rig, s, kind, stream=stream)
        assert stable(via.dump) == stable(straight.dump)
        assert _request(via.bodies[0]) == _request(straight.bodies[0])
        return
    straight = direct(rig, s, kind, stream=stream)
    expected = straight.meaning
    if stream and s.include_usage is not True:
        expected = expected.without_usage()
    assert via.meaning == expected
    assert sent(STYLE[kind], via.bodies[0]) == sent(STYLE[kind], straight.bodies[0])


def _request(body: dict[str, Any]) -> dict[str, Any]:
    """A request body; ``stream: false`` is the default, whether sent or not."""
    return {k: v for k, v in body.items() if not (k == "stream" and v is False)}
