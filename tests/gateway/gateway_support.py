"""Helpers for gateway tests: configs around fakes, a gateway handle, an HTTP client."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fake_servers import FakeServerHandle, LoopThread
from routing._gateway_server import Gateway
from routing.config import load_config

API = {
    "llamacpp": "openai",
    "lmstudio": "openai",
    "openai": "openai",
    "ollama": "ollama",
    "anthropic": "anthropic",
}
KEY_ENV = {"openai": "ROUTING_GW_TEST_OPENAI_KEY", "anthropic": "ROUTING_GW_TEST_ANTHROPIC_KEY"}
HI = [{"role": "user", "content": "hi"}]


def config_text(
    fakes: Mapping[str, FakeServerHandle],
    *,
    rules: str = "",
    defaults: str = "  probe: {timeout: 1.0, ttl: 30}\n",
    extra: str = "",
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
    if rules:
        text += "rules:\n" + rules
    return text + extra


class GatewayHandle:
    """A :class:`Gateway` running in a :class:`LoopThread`, driven from sync tests."""

    def __init__(self, loop: LoopThread, gateway: Gateway, path: Path) -> None:
        self.loop = loop
        self.gateway = gateway
        self.path = path

    @classmethod
    def start(cls, loop: LoopThread, path: Path, **options: Any) -> GatewayHandle:
        """Load ``path`` and serve it on 127.0.0.1, a free port."""
        config = load_config(path)

        async def go() -> Gateway:
            gw = Gateway(config, config_path=str(path), **options)
            return await gw.start("127.0.0.1", 0)

        return cls(loop, loop.run(go()), path)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.gateway.url

    def stop(self) -> None:
        """Stop serving and close every router."""
        self.loop.run(self.gateway.stop())

    def reload_check(self, *, force: bool = False) -> bool:
        """Run one watcher check now (as the 1 s poll would)."""
        watcher = self.gateway.watcher
        assert watcher is not None
        return self.loop.run(watcher.check(force=force))


class Reply:
    """A finished HTTP exchange."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = dict(headers)
        self.body = body

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def routed_to(self) -> str | None:
        """The ``X-Routed-To`` header."""
        return self.headers.get("X-Routed-To")


def http(
    method: str,
    url: str,
    body: bytes | dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
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
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.headers, exc.read())


def chat(
    url: str,
    model: str | None,
    *,
    stream: bool = False,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    """POST a chat request to the gateway's OpenAI door."""
    body: dict[str, Any] = {"messages": HI, "stream": stream}
    if model is not None:
        body["model"] = model
    return http("POST", url + "/v1/chat/completions", body, headers, timeout)


def stop_all(gateway: GatewayHandle, fakes: Mapping[str, FakeServerHandle]) -> None:
    """Stop ``gateway``, then every fake; then check that no fake saw anything wrong."""
    gateway.stop()
    for fake in fakes.values():
        fake.stop()
    for fake in fakes.values():
        fake.check()


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` until true, failing after ``timeout`` seconds (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def set_keys(monkeypatch: Any) -> dict[str, str]:
    """Put secret API keys in the environment (the fakes require them); return them."""
    keys = {kind: f"sk-secret-{kind}-{os.getpid()}-do-not-leak" for kind in KEY_ENV}
    for kind, env in KEY_ENV.items():
        monkeypatch.setenv(env, keys[kind])
    return keys


def sse_text(body: bytes) -> str:
    """The assistant text carried by an SSE body of chat.completion.chunk events."""
    parts = []
    for event in body.decode().split("\n\n"):
        if not event.startswith("data: {"):
            continue
        for choice in json.loads(event[6:]).get("choices") or []:
            parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts)
