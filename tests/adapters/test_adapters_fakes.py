"""Every adapter against the fake of each kind: OpenAI shapes out, wire format in."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from adapter_support import (
    CHAT_PATH,
    HI,
    KINDS,
    MODEL,
    chat,
    instance_for,
    run,
    start_kind,
    stream,
    text_of,
    timeout,
    with_session,
)

from routing.adapters import get_adapter


@pytest.mark.parametrize("kind", KINDS)
def test_chat_reply_is_openai_shaped(fake_server: Any, kind: str) -> None:
    """A non-streaming reply has choices, message, finish_reason, usage and model."""
    fake = start_kind(fake_server, kind)
    reply = chat(instance_for(kind, fake.url))
    assert reply["object"] == "chat.completion"
    assert reply["model"] == MODEL[kind]
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == f"I am {MODEL[kind]} on {kind} port {fake.port}"
    usage = reply["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("kind", KINDS)
def test_stream_chunks_are_openai_shaped(fake_server: Any, kind: str) -> None:
    """Stream chunks are chat.completion.chunk with one finish_reason and, asked for, usage."""
    fake = start_kind(fake_server, kind)
    chunks = stream(instance_for(kind, fake.url), {**HI, "stream_options": {"include_usage": True}})
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["model"] == MODEL[kind] for c in chunks)
    assert text_of(chunks) == f"I am {MODEL[kind]} on {kind} port {fake.port}"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert [f for f in finishes if f] == ["stop"]
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert len(usage) == 1 and usage[0]["completion_tokens"] > 0
    assert chunks[-1]["choices"] == []


@pytest.mark.parametrize("kind", KINDS)
def test_stream_has_no_usage_chunk_unless_asked(fake_server: Any, kind: str) -> None:
    """Without stream_options.include_usage no chunk has empty choices (clients index [0])."""
    fake = start_kind(fake_server, kind)
    chunks = stream(instance_for(kind, fake.url))
    assert chunks and all(c["choices"] for c in chunks)
    assert text_of(chunks) == f"I am {MODEL[kind]} on {kind} port {fake.port}"


@pytest.mark.parametrize("kind", KINDS)
def test_stream_is_not_buffered(fake_server: Any, kind: str) -> None:
    """With slow:100 the first chunk arrives well before the stream's end."""
    fake = start_kind(fake_server, kind, "slow:100")
    inst = instance_for(kind, fake.url)

    async def go(session: aiohttp.ClientSession) -> list[float]:
        arrivals = []
        async for _chunk in get_adapter(inst.api).stream(session, inst, MODEL[kind], HI, timeout()):
            arrivals.append(time.monotonic())
        return arrivals

    arrivals = run(with_session(go))
    assert arrivals[-1] - arrivals[0] >= 0.3  # >= 3 delays of 100 ms after the first chunk


@pytest.mark.parametrize("kind", KINDS)
def test_request_carries_wire_format(fake_server: Any, kind: str) -> None:
    """The fake logs a request at the API style's path, with its model and key header."""
    fake = start_kind(fake_server, kind)
    inst = instance_for(kind, fake.url)
    chat(inst, {**HI, "temperature": 0.2})
    logged = fake.requests[-1]
    assert logged["path"] == CHAT_PATH[inst.api]
    assert logged["json"]["model"] == MODEL[kind]
    assert logged["json"]["stream"] is False
    headers = {k.lower(): v for k, v in logged["headers"].items()}
    if inst.api == "anthropic":
        assert headers["x-api-key"] == "sk-test-key"
        assert headers["anthropic-version"] == "2023-06-01"
    else:
        assert headers["authorization"] == "Bearer sk-test-key"


def test_local_server_gets_no_authorization_without_key(fake_server: Any) -> None:
    """An instance without a key sends no Authorization header (local servers need none)."""
    fake = start_kind(fake_server, "llamacpp")
    chat(instance_for("llamacpp", fake.url, api_key_env=None))
    headers = {k.lower() for k in fake.requests[-1]["headers"]}
    assert "authorization" not in headers


def test_ollama_options_mapping(fake_server: Any) -> None:
    """temperature, top_p, max_tokens, stop and seed land under Ollama's options."""
    fake = start_kind(fake_server, "ollama")
    request = {**HI, "temperature": 0.3, "top_p": 0.9, "max_tokens": 42, "stop": "END", "seed": 7}
    chat(instance_for("ollama", fake.url), request)
    body = fake.requests[-1]["json"]
    assert body["options"] == {
        "temperature": 0.3,
        "top_p": 0.9,
        "num_predict": 42,
        "stop": ["END"],
        "seed": 7,
    }
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_anthropic_system_split_and_default_max_tokens(fake_server: Any) -> None:
    """System messages move to ``system``; max_tokens defaults to 1024; stop is a list."""
    fake = start_kind(fake_server, "anthropic")
    request = {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "stop": "END",
        "temperature": 0.5,
    }
    chat(instance_for("anthropic", fake.url), request)
    body = fake.requests[-1]["json"]
    assert body["system"] == "be brief"
    assert body["max_tokens"] == 1024
    assert body["stop_sequences"] == ["END"]
    assert body["temperature"] == 0.5
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_openai_stream_passes_stream_options_as_asked(fake_server: Any) -> None:
    """An OpenAI-style stream sets stream; stream_options only as the caller gave them."""
    fake = start_kind(fake_server, "lmstudio")
    stream(instance_for("lmstudio", fake.url))
    body = fake.requests[-1]["json"]
    assert body["stream"] is True
    assert "stream_options" not in body
    stream(instance_for("lmstudio", fake.url), {**HI, "stream_options": {"include_usage": True}})
    assert fake.requests[-1]["json"]["stream_options"] == {"include_usage": True}
