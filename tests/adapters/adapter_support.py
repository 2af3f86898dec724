"""Helpers for adapter tests: an Instance per fake, a runner, the model each kind serves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp

from routing.adapters import get_adapter
from routing.config import Instance

T = TypeVar("T")

KINDS = ("llamacpp", "lmstudio", "openai", "ollama", "anthropic")
API = {
    "llamacpp": "openai",
    "lmstudio": "openai",
    "openai": "openai",
    "ollama": "ollama",
    "anthropic": "anthropic",
}
MODEL = {
    "llamacpp": "m.gguf",
    "lmstudio": "qwen2.5-7b-instruct",
    "openai": "gpt-4o-mini",
    "ollama": "llama3:latest",
    "anthropic": "claude-3-5-haiku-latest",
}
KEY_ENV = "ROUTING_TEST_API_KEY"
CHAT_PATH = {"openai": "/v1/chat/completions", "ollama": "/api/chat", "anthropic": "/v1/messages"}
HI = {"messages": [{"role": "user", "content": "hi"}]}


def instance_for(kind: str, url: str, **overrides: Any) -> Instance:
    """An Instance pointing at a fake of ``kind`` (keyed through ``KEY_ENV``)."""
    fields: dict[str, Any] = {
        "provider": kind,
        "name": "t",
        "api": API[kind],
        "kind": kind,
        "url": url,
        "api_key_env": KEY_ENV,
        "connect_timeout": 1.0,
        "request_timeout": 10.0,
    }
    fields.update(overrides)
    return Instance(**fields)


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run ``coro`` in a fresh event loop, bounded by ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def timeout(total: float = 10.0) -> aiohttp.ClientTimeout:
    """A ClientTimeout like the failover layer builds."""
    return aiohttp.ClientTimeout(total=total, connect=1.0, sock_read=total)


async def with_session(fn: Callable[[aiohttp.ClientSession], Awaitable[T]]) -> T:
    """Call ``fn`` with a fresh session that is closed afterwards."""
    async with aiohttp.ClientSession() as session:
        return await fn(session)


def chat(inst: Instance, request: dict[str, Any] = HI, total: float = 10.0) -> dict[str, Any]:
    """One non-streaming request through the instance's adapter."""

    async def go(session: aiohttp.ClientSession) -> dict[str, Any]:
        model = request.get("model") or MODEL[inst.kind]
        return await get_adapter(inst.api).chat(session, inst, model, request, timeout(total))

    return run(with_session(go))


def stream(
    inst: Instance, request: dict[str, Any] = HI, total: float = 10.0
) -> list[dict[str, Any]]:
    """All chunks of one streaming request through the instance's adapter."""

    async def go(session: aiohttp.ClientSession) -> list[dict[str, Any]]:
        model = request.get("model") or MODEL[inst.kind]
        out = []
        async for chunk in get_adapter(inst.api).stream(
            session, inst, model, request, timeout(total)
        ):
            out.append(chunk)
        return out

    return run(with_session(go))


def text_of(chunks: list[dict[str, Any]]) -> str:
    """The assistant text of a list of chunks."""
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def start_kind(fake_server: Any, kind: str, fault: str | None = None) -> Any:
    """A fake of ``kind`` serving the usual model of that kind, with ``fault``."""
    return fake_server(kind, [MODEL[kind]], fault=fault)
