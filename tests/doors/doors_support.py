"""Helpers for the door tests: the gateway tests' helpers (configs around fakes, a gateway
handle, one HTTP call, keys), plus each kind's model and SSE parsing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

from gateway_support import (  # the gateway tests' dir: on sys.path (conftest)
    API,
    KEY_ENV,
    GatewayHandle,
    Reply,
    config_text,
    http,
    set_keys,
)

__all__ = [
    "API",
    "KEY_ENV",
    "KINDS",
    "MODELS",
    "GatewayHandle",
    "Reply",
    "config_text",
    "http",
    "run",
    "set_keys",
    "sse_events",
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
