"""Tool calls of a translated stream reach `anthropic`'s AsyncAnthropic as Anthropic streams
them: a tool_use block per call, its input in input_json_delta fragments as they come."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from doors_support import MODELS, NATIVE, TOOLS, Door, GatewayHandle, config_text, run

from fake_servers import CALL_TOOLS, INTERLEAVE_TOOLS
from fake_servers._inputs import fragments
from fake_servers.pytest_plugin import FakeServerFactory

OPENAI_STYLE = ["lmstudio", "openai"]  # translated, tool arguments streamed in fragments
CALLS = [{"city": "Paris", "n": 1}, {"city": "Paris", "n": 2}]


def _compact(value: Any) -> str:
    """Arguments as the OpenAI-style fakes send them."""
    return json.dumps(value, separators=(",", ":"))


async def _stream(url: str, model: str, ask: str, seen: list[Any]) -> None:
    """Add to ``seen`` the raw events of one streamed request offering TOOLS (the SDK's own
    helper events, ``text`` and ``input_json``, left out) as they come, then the final
    message."""
    async with (
        anthropic.AsyncAnthropic(base_url=url, api_key="unused", max_retries=0) as client,
        client.messages.stream(
            model=model, max_tokens=64, messages=[{"role": "user", "content": ask}], tools=TOOLS
        ) as stream,  # type: ignore[arg-type]
    ):
        async for event in stream:
            if event.type not in ("text", "input_json"):
                seen.append(event)
        seen.append(await stream.get_final_message())


def _blocks(events: list[Any]) -> list[tuple[Any, list[str]]]:
    """Each tool_use block: its start's content block and its partial_json fragments; checks
    blocks never overlap (each starts after the previous one stopped)."""
    out: list[tuple[Any, list[str]]] = []
    open_index = None
    for event in events:
        if event.type == "content_block_start":
            assert open_index is None, "a block started inside another"
            open_index = event.index
            if event.content_block.type == "tool_use":
                out.append((event.content_block, []))
        elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            assert event.index == open_index
            out[-1][1].append(event.delta.partial_json)
        elif event.type == "content_block_stop":
            assert event.index == open_index
            open_index = None
    assert open_index is None
    return out


def _run(door: Door, kind: str, ask: str) -> tuple[list[Any], Any]:
    seen: list[Any] = []
    run(_stream(door.gateway.url, MODELS[kind], ask, seen))
    return seen[:-1], seen[-1]


@pytest.mark.parametrize("kind", [*OPENAI_STYLE, "ollama"])
def test_two_sequential_calls_stream_their_input(door: Door, kind: str) -> None:
    """Two calls: two tool_use blocks one after the other, each input in input_json_delta
    events (the backend's fragments, as sent) before message_stop; the final message's inputs
    are the parsed arguments."""
    events, final = _run(door, kind, f"{CALL_TOOLS} weather please")
    blocks = _blocks(events)
    assert [(block.name, bool(block.id), block.input) for block, _ in blocks] == [
        ("get_weather", True, {}),
        ("get_weather", True, {}),
    ]
    for (_, pieces), arguments in zip(blocks, CALLS, strict=True):
        assert json.loads("".join(pieces)) == arguments
        if kind in OPENAI_STYLE:  # Ollama sends each call whole, in one piece
            assert pieces == fragments(_compact(arguments)) and len(pieces) > 1
    kinds = [event.type for event in events]
    assert kinds[-1] == "message_stop"
    assert kinds.index("message_delta") > max(
        i for i, e in enumerate(events) if e.type == "content_block_delta"
    )
    assert final.stop_reason == "tool_use"
    assert [(b.type, b.input) for b in final.content] == [("tool_use", c) for c in CALLS]


@pytest.mark.parametrize("kind", OPENAI_STYLE)
def test_interleaved_calls_fall_back_to_whole_blocks(door: Door, kind: str) -> None:
    """A backend interleaving two calls' fragments: the first call streams, the second comes
    whole after it; both blocks carry exactly their call's arguments."""
    events, final = _run(door, kind, f"{CALL_TOOLS} {INTERLEAVE_TOOLS} weather please")
    blocks = _blocks(events)
    assert ["".join(pieces) for _, pieces in blocks] == [_compact(c) for c in CALLS]
    assert blocks[0][1] == fragments(_compact(CALLS[0]))
    assert [(b.type, b.input) for b in final.content] == [("tool_use", c) for c in CALLS]
    assert len({b.id for b in final.content}) == 2


def test_tool_input_streams_before_the_backend_finishes(
    fake_server: FakeServerFactory, gateway: Callable[[str], GatewayHandle]
) -> None:
    """A stream cut by the backend after a call's first fragment: the client has already
    seen the tool_use block start and that fragment when the error event comes (nothing is
    held back until the model has finished)."""
    assert "lmstudio" not in NATIVE
    fake = fake_server("lmstudio", [MODELS["lmstudio"]], fault="drop")  # cut after 3 chunks
    handle = gateway(config_text({"lmstudio:one": fake}))
    seen: list[Any] = []
    with pytest.raises(anthropic.APIStatusError):
        run(_stream(handle.url, MODELS["lmstudio"], CALL_TOOLS, seen))
    starts = [e for e in seen if e.type == "content_block_start"]
    assert [(e.content_block.type, e.content_block.name) for e in starts] == [
        ("tool_use", "get_weather")
    ]
    pieces = [
        e.delta.partial_json
        for e in seen
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert pieces == fragments(_compact(CALLS[0]))[:1]
    assert "message_stop" not in [e.type for e in seen]
