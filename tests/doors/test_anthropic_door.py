"""The real `anthropic` SDK through the gateway's Anthropic door, over a fake of every kind."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest
from doors_support import HI, KINDS, MODELS, NATIVE, TOOLS, Door, http, sse_events


def _names(text: str, kind: str) -> None:
    assert text.startswith(f"I am {MODELS[kind]} on {kind} port "), text


@pytest.mark.parametrize("kind", KINDS)
def test_sync_create(door: Door, kind: str) -> None:
    """messages.create answers from each kind; the headers say where and how it went."""
    with door.client() as client:
        raw = client.messages.with_raw_response.create(
            model=MODELS[kind], max_tokens=64, messages=HI
        )  # type: ignore[arg-type]
        message = raw.parse()
    assert raw.headers["X-Routed-To"] == f"{kind}:one"
    how = "passed through" if kind in NATIVE else "translated to chat"
    assert f"Anthropic messages {how}" in raw.headers["X-Routing-Reason"]
    assert message.type == "message" and message.role == "assistant"
    assert message.stop_reason == "end_turn"
    block = message.content[0]
    assert block.type == "text"
    _names(block.text, kind)
    assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0


@pytest.mark.parametrize("kind", KINDS)
def test_sync_stream(door: Door, kind: str) -> None:
    """messages.stream yields the same text from each kind, with a final message."""
    with (
        door.client() as client,
        client.messages.stream(model=MODELS[kind], max_tokens=64, messages=HI) as stream,
    ):  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    _names(text, kind)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert final.content[0].type == "text" and final.content[0].text == text


@pytest.mark.parametrize("kind", KINDS)
def test_async_both_with_tools(door: Door, kind: str) -> None:
    """AsyncAnthropic: tool_use blocks streamed and not, then the results answered as text."""

    async def go() -> tuple[Any, Any, Any]:
        async with anthropic.AsyncAnthropic(
            base_url=door.gateway.url, api_key="unused", max_retries=0
        ) as client:
            ask = [{"role": "user", "content": "CALL_TOOLS weather please"}]
            whole = await client.messages.create(
                model=MODELS[kind], max_tokens=64, messages=ask, tools=TOOLS
            )  # type: ignore[arg-type]
            async with client.messages.stream(
                model=MODELS[kind], max_tokens=64, messages=ask, tools=TOOLS
            ) as stream:  # type: ignore[arg-type]
                streamed = await stream.get_final_message()
            uses = [b for b in whole.content if b.type == "tool_use"]
            follow = [
                *ask,
                {"role": "assistant", "content": [b.model_dump() for b in uses]},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": b.id, "content": "sunny"}
                        for b in uses
                    ],
                },
            ]
            answer = await client.messages.create(
                model=MODELS[kind], max_tokens=64, messages=follow, tools=TOOLS
            )  # type: ignore[arg-type]
            return whole, streamed, answer

    whole, streamed, answer = asyncio.run(asyncio.wait_for(go(), 20))
    for message in (whole, streamed):
        assert message.stop_reason == "tool_use"
        uses = [b for b in message.content if b.type == "tool_use"]
        assert [(b.name, b.input) for b in uses] == [
            ("get_weather", {"city": "Paris", "n": 1}),
            ("get_weather", {"city": "Paris", "n": 2}),
        ]
        assert all(b.id for b in uses)
    assert answer.content[0].type == "text"
    assert answer.content[0].text.endswith("; tool results: 2")


def test_stream_events_in_anthropic_order(door: Door) -> None:
    """A translated stream is Anthropic's exact event sequence, with ping after the first
    block starts, and usage in message_delta."""
    reply = http(
        "POST",
        door.gateway.url + "/v1/messages",
        {"model": MODELS["ollama"], "max_tokens": 32, "messages": HI, "stream": True},
    )
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(reply.body)
    names = [name for name, _ in events]
    assert all(name == data["type"] for name, data in events)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] > 0 and delta["usage"]["input_tokens"] > 0


@pytest.mark.parametrize("kind", KINDS)
def test_request_fields_reach_the_backend(door: Door, kind: str) -> None:
    """System blocks, images, stop_sequences, metadata and max_tokens 0 arrive, as sent or
    in the backend's own terms."""
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    body = {
        "model": MODELS[kind],
        "max_tokens": 0,
        "stop_sequences": ["port"],
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "user-7"},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, image]}],
    }
    reply = http("POST", door.gateway.url + "/v1/messages", body)
    assert reply.status == 200, reply.body
    text = "".join(b.get("text", "") for b in reply.json()["content"])
    assert text == f"I am {MODELS[kind]} on {kind} "  # cut before the stop sequence
    sent = door.upstream(kind)
    if kind in NATIVE:
        assert {k: sent[k] for k in body if k != "model"} == {
            k: v for k, v in body.items() if k != "model"
        }
    elif kind == "ollama":
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent["options"]["num_predict"] == 0 and sent["options"]["stop"] == ["port"]
        assert sent["messages"][1]["images"] == ["iVBORw0KGgo="]
    else:
        assert sent["max_tokens"] == 0 and sent["stop"] == ["port"]
        assert sent["user"] == "user-7"
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent["messages"][1]["content"][1] == {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
        }


@pytest.mark.parametrize("kind", KINDS)
def test_count_tokens(door: Door, kind: str) -> None:
    """count_tokens asks servers that have it and estimates for the others, saying which."""
    with door.client() as client:
        raw = client.messages.with_raw_response.count_tokens(
            model=MODELS[kind], messages=[{"role": "user", "content": "one two three four"}]
        )
        counted = raw.parse()
    assert counted.input_tokens > 0
    reason = raw.headers["X-Routing-Reason"]
    if kind in NATIVE:
        assert f"token count by {kind}" in reason
    else:
        assert counted.input_tokens == 5  # 18 characters, 4 to a token, rounded up
        assert "estimated by the gateway" in reason


def test_errors_in_anthropic_shape(door: Door) -> None:
    """Unknown model, a bad field and an untranslatable block are Anthropic-shaped errors."""
    with door.client() as client:
        with pytest.raises(anthropic.NotFoundError) as missing:
            client.messages.create(model="nobody-serves-this", max_tokens=8, messages=HI)  # type: ignore[arg-type]
        with pytest.raises(anthropic.BadRequestError) as bad:
            client.messages.create(model=MODELS["ollama"], max_tokens=-1, messages=HI)  # type: ignore[arg-type]
        with pytest.raises(anthropic.BadRequestError) as untranslatable:
            client.messages.create(
                model=MODELS["ollama"],
                max_tokens=8,
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                            }
                        ],
                    }
                ],
            )  # type: ignore[list-item]
    assert missing.value.body["type"] == "error"  # type: ignore[index]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "max_tokens" in bad.value.body["error"]["message"]  # type: ignore[index]
    assert "messages[0].content[0].type" in untranslatable.value.message
    assert [
        r
        for r in door.fakes["ollama"].requests
        if r["path"] == "/api/chat"
        and any("document" in json.dumps(m) for m in r["json"]["messages"])
    ] == []
