"""Helpers for the door tests: configs around fakes, a gateway handle, one HTTP call."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from fake_servers import FakeServerHandle, LoopThread
from routing._gateway import Gateway
from routing.config import load_config

T = TypeVar("T")

API = {
    "llamacpp": "openai",
    "lmstudio": "openai",
    "openai": "openai",
    "ollama": "ollama",
    "anthropic": "anthropic",
}
MODELS = {
    "llamacpp": "qwen-coder.gguf",
    "lmstudio": "qwen2.5-7b-instruct",
    "openai": "gpt-4o-mini",
    "ollama": "llama3:latest",
    "anthropic": "claude-3-5-haiku-latest",
}
KINDS = tuple(MODELS)
KEY_ENV = {"openai": "ROUTING_DOORS_OPENAI_KEY", "anthropic": "ROUTING_DOORS_ANTHROPIC_KEY"}


def set_keys(monkeypatch: Any) -> dict[str, str]:
    """Put the keyed fakes' API keys in the environment; return them by kind."""
    keys = {kind: f"sk-doors-{kind}-{os.getpid()}" for kind in KEY_ENV}
    for kind, env in KEY_ENV.items():
        monkeypatch.setenv(env, keys[kind])
    return keys


def config_text(
    fakes: Mapping[str, FakeServerHandle],
    *,
    rules: str = "",
    defaults: str = "  probe: {timeout: 1.0, ttl: 30}\n",
) -> str:
    """YAML for ``{"provider:instance": fake}``; providers named after the fakes' kinds."""
    providers: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for key, fake in fakes.items():
        provider, _, name = key.partition(":")
        kinds[provider] = fake.kind
        line = f'      {name}: {{url: "{fake.url}"'
        if fake.kind in KEY_ENV:
            line += f", api_key_env: {KEY_ENV[fake.kind]}"
        providers.setdefault(provider, []).append(line + "}\n")
    text = "version: 1\ndefaults:\n" + defaults + "providers:\n"
    for provider, lines in providers.items():
        kind = kinds[provider]
        text += f"  {provider}:\n    api: {API[kind]}\n    kind: {kind}\n    instances:\n"
        text += "".join(lines)
    return text + ("rules:\n" + rules if rules else "")


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run ``coro`` in a fresh event loop, bounded by ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class GatewayHandle:
    """A :class:`Gateway` running in a :class:`LoopThread`, driven from sync tests."""

    def __init__(self, loop: LoopThread, gateway: Gateway) -> None:
        self.loop = loop
        self.gateway = gateway

    @classmethod
    def start(cls, loop: LoopThread, path: Path) -> GatewayHandle:
        """Load ``path`` and serve it on 127.0.0.1, a free port."""
        config = load_config(path)

        async def go() -> Gateway:
            return await Gateway(config).start("127.0.0.1", 0)

        return cls(loop, loop.run(go()))

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.gateway.url

    def stop(self) -> None:
        """Stop serving and close every router."""
        self.loop.run(self.gateway.stop())


class Reply:
    """A finished HTTP exchange."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = dict(headers)
        self.body = body

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def http(
    method: str,
    url: str,
    body: dict[str, Any] | bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """One blocking HTTP request (urllib: no client library in the way)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return Reply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.headers, exc.read())


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
