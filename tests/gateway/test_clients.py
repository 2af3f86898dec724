"""The real ``openai`` and ``ollama`` client packages against the gateway, over every kind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import ollama
import openai
import pytest
from gateway_support import HI, GatewayHandle, config_text, set_keys

MODELS = {
    "llamacpp": "qwen-coder.gguf",
    "lmstudio": "qwen2.5-7b-instruct",
    "openai": "gpt-4o-mini",
    "ollama": "llama3:latest",
    "anthropic": "claude-3-5-haiku-latest",
}
KINDS = tuple(MODELS)


@pytest.fixture
def every_kind(
    fake_server: Callable[..., Any],
    gateway: Callable[..., GatewayHandle],
    monkeypatch: pytest.MonkeyPatch,
) -> GatewayHandle:
    """A gateway over one fake of each kind (keyed kinds need their API key)."""
    keys = set_keys(monkeypatch)
    fakes = {
        f"{kind}:one": fake_server(kind, [MODELS[kind]], api_key=keys.get(kind)) for kind in KINDS
    }
    return gateway(config_text(fakes))


def _answer_names(text: str, kind: str, model: str) -> None:
    assert text.startswith(f"I am {model} on {kind} port "), text


@pytest.mark.parametrize("kind", KINDS)
def test_openai_sync_non_stream(every_kind: GatewayHandle, kind: str) -> None:
    """openai.OpenAI gets a chat.completion from each kind, X-Routed-To naming it."""
    client = openai.OpenAI(base_url=every_kind.url + "/v1", api_key="unused", max_retries=0)
    with client:
        raw = client.chat.completions.with_raw_response.create(model=MODELS[kind], messages=HI)  # type: ignore[arg-type]
        reply = raw.parse()
    assert raw.headers["X-Routed-To"] == f"{kind}:one"
    assert reply.choices[0].message.content is not None
    _answer_names(reply.choices[0].message.content, kind, MODELS[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_openai_sync_stream(every_kind: GatewayHandle, kind: str) -> None:
    """openai.OpenAI streams from each kind; the chunks add up to the self-naming answer."""
    client = openai.OpenAI(base_url=every_kind.url + "/v1", api_key="unused", max_retries=0)
    with (
        client,
        client.chat.completions.with_streaming_response.create(
            model=MODELS[kind], messages=HI, stream=True
        ) as raw,
    ):  # type: ignore[arg-type]
        assert raw.headers["X-Routed-To"] == f"{kind}:one"
        text = "".join(
            chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices
        )
    _answer_names(text, kind, MODELS[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_openai_async_both(every_kind: GatewayHandle, kind: str) -> None:
    """openai.AsyncOpenAI gets the same answer streamed and not streamed from each kind."""

    async def go() -> tuple[str, str]:
        async with openai.AsyncOpenAI(
            base_url=every_kind.url + "/v1", api_key="unused", max_retries=0
        ) as client:
            reply = await client.chat.completions.create(model=MODELS[kind], messages=HI)  # type: ignore[arg-type]
            stream = await client.chat.completions.create(
                model=MODELS[kind], messages=HI, stream=True
            )  # type: ignore[arg-type]
            parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            return reply.choices[0].message.content or "", "".join(parts)

    whole, streamed = asyncio.run(asyncio.wait_for(go(), 20))
    assert whole == streamed
    _answer_names(whole, kind, MODELS[kind])


def test_openai_models_list(every_kind: GatewayHandle) -> None:
    """openai's models.list() shows every kind's model, owned by its provider:instance."""
    with openai.OpenAI(base_url=every_kind.url + "/v1", api_key="unused", max_retries=0) as client:
        owned = {(m.id, m.owned_by) for m in client.models.list()}
    assert owned == {(MODELS[kind], f"{kind}:one") for kind in KINDS}


def test_openai_not_found_error(every_kind: GatewayHandle) -> None:
    """openai raises NotFoundError with code model_not_found for a model nobody serves."""
    with (
        openai.OpenAI(base_url=every_kind.url + "/v1", api_key="unused", max_retries=0) as client,
        pytest.raises(openai.NotFoundError) as info,
    ):
        client.chat.completions.create(model="nobody-serves-this", messages=HI)  # type: ignore[arg-type]
    assert info.value.code == "model_not_found"


@pytest.mark.parametrize("kind", KINDS)
def test_ollama_client_chat(every_kind: GatewayHandle, kind: str) -> None:
    """ollama.Client chats through the gateway, streamed and not, whatever kind serves."""
    with ollama.Client(host=every_kind.url) as client:
        reply = client.chat(model=MODELS[kind], messages=HI)
        parts = list(client.chat(model=MODELS[kind], messages=HI, stream=True))
    assert reply.done
    _answer_names(reply.message.content or "", kind, MODELS[kind])
    assert parts[-1].done
    assert "".join(p.message.content or "" for p in parts) == reply.message.content


def test_ollama_client_list_and_errors(every_kind: GatewayHandle) -> None:
    """ollama.Client lists every model; an unserved model raises ResponseError 404."""
    with ollama.Client(host=every_kind.url) as client:
        names = {m.model for m in client.list().models}
        with pytest.raises(ollama.ResponseError) as info:
            client.chat(model="nobody-serves-this", messages=HI)
    assert names == set(MODELS.values())
    assert info.value.status_code == 404
    assert "nobody-serves-this" in info.value.error


def test_ollama_client_async(every_kind: GatewayHandle) -> None:
    """ollama.AsyncClient streams from a llama.cpp backend through the gateway."""

    async def go() -> str:
        client = ollama.AsyncClient(host=every_kind.url)
        try:
            parts = [
                p.message.content or ""
                async for p in await client.chat(model=MODELS["llamacpp"], messages=HI, stream=True)
            ]
        finally:
            await client.close()
        return "".join(parts)

    _answer_names(asyncio.run(asyncio.wait_for(go(), 20)), "llamacpp", MODELS["llamacpp"])
