"""Helpers for the door tests: the gateway tests' helpers (configs around fakes, a gateway
handle, one HTTP call, keys), plus each kind's model, SSE parsing and the Anthropic door's
:class:`Door` (a gateway over one fake of each kind; the ``door`` fixture)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import anthropic
from gateway_support import (  # the gateway tests' dir: on sys.path (conftest)
    API,
    HI,
    KEY_ENV,
    GatewayHandle,
    Reply,
    config_text,
    http,
    set_keys,
    stop_all,
)

from fake_servers import FakeServerHandle, LoggedRequest, LoopThread

__all__ = [
    "API",
    "HI",
    "KEY_ENV",
    "KINDS",
    "MODELS",
    "NATIVE",
    "TOOLS",
    "Door",
    "GatewayHandle",
    "Reply",
    "config_text",
    "http",
    "keyed_fakes",
    "run",
    "set_keys",
    "sse_events",
    "stop_all",
]

T = TypeVar("T")

MODELS = {
    "llamacpp": "qwen-coder.gguf",
    "lmstudio": "qwen2.5-7b-instruct",
    "openai": "gpt-4o-mini",
    "ollama": "llama3:latest",
    "anthropic": "claude-3-5-haiku-latest",
}
KINDS = tuple(MODELS)


def keyed_fakes(loop: LoopThread, keys: Mapping[str, str]) -> dict[str, FakeServerHandle]:
    """A fake of each kind serving its model of :data:`MODELS`, those with a key in ``keys``
    (:func:`set_keys`) asking for it."""
    return {
        kind: FakeServerHandle.start_new(loop, kind, [MODELS[kind]], api_key=keys.get(kind))
        for kind in KINDS
    }


NATIVE = {"anthropic", "llamacpp"}  # kinds that speak Messages: passed through
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
        },
    }
]


class Door:
    """A gateway and its fakes, one of each kind (the ``door`` fixture)."""

    def __init__(
        self, gateway: GatewayHandle, fakes: dict[str, FakeServerHandle], keys: dict[str, str]
    ) -> None:
        self.gateway = gateway
        self.fakes = fakes
        self.keys = keys

    def client(self) -> anthropic.Anthropic:
        """A sync client pointed at the gateway (as Claude Code is by ANTHROPIC_BASE_URL)."""
        return anthropic.Anthropic(base_url=self.gateway.url, api_key="unused", max_retries=0)

    def upstream_request(self, kind: str) -> LoggedRequest:
        """The last POST the fake of ``kind`` received."""
        return [r for r in self.fakes[kind].requests if r["method"] == "POST"][-1]

    def upstream(self, kind: str) -> dict[str, Any]:
        """The body of the last POST the fake of ``kind`` received."""
        body: dict[str, Any] = self.upstream_request(kind)["json"]
        return body


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run ``coro`` in a fresh event loop, bounded by ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def sse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, data)`` of each event of an SSE body (``message`` when unnamed)."""
    out = []
    for block in body.decode().split("\n\n"):
        name, data = "message", None
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if data is not None and data != "[DONE]":
            out.append((name, json.loads(data)))
    return out
