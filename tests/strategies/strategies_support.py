"""Helpers for strategy tests: fleets of fakes, configs around them, a gateway, polling."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp

from fake_servers import FakeServer
from routing._gateway_server import Gateway
from routing._strategies import sticky_weight
from routing.config import Config, parse_config

T = TypeVar("T")

MODEL = "shared.gguf"
"""The model every instance of a fleet serves (unless a test says otherwise)."""

HI = [{"role": "user", "content": "hi"}]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a fresh event loop (tests are plain sync functions)."""
    return asyncio.run(coro)


class FakeClock:
    """A clock tests move by hand: probe results stay fresh until a test says otherwise."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Backend(Protocol):
    """What a config needs of a backend: where it is and what kind of server it is."""

    @property
    def url(self) -> str: ...

    @property
    def kind(self) -> str: ...


@dataclass(frozen=True)
class Remote:
    """A backend that is not a fake (a real server): its URL and kind."""

    url: str
    kind: str = "llamacpp"


def config_text(
    members: Mapping[str, Backend], *, strategy: str = "first", rules: str = "", ttl: float = 30
) -> str:
    """YAML for ``{"provider:instance": fake}`` (declaration order kept; each provider's
    ``kind`` is its fakes' kind) with ``defaults.strategy``."""
    providers: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for key, fake in members.items():
        prov, _, name = key.partition(":")
        kinds[prov] = fake.kind
        providers.setdefault(prov, []).append(f'      {name}: {{url: "{fake.url}"}}\n')
    text = (
        "version: 1\ndefaults:\n  connect_timeout: 0.5\n  request_timeout: 10\n"
        f"  probe: {{timeout: 1.0, ttl: {ttl}}}\n  strategy: {strategy}\nproviders:\n"
    )
    for prov, lines in providers.items():
        api = "ollama" if kinds[prov] == "ollama" else "openai"
        text += f"  {prov}:\n    api: {api}\n    kind: {kinds[prov]}\n    instances:\n"
        text += "".join(lines)
    return text + ("rules:\n" + rules if rules else "")


def config(members: Mapping[str, Backend], **options: Any) -> Config:
    """The parsed :func:`config_text`."""
    return parse_config(config_text(members, **options), environ={})


async def start(kind: str, models: Sequence[str], **options: Any) -> FakeServer:
    """A started fake (stop it with ``await fake.stop()``)."""
    return await FakeServer(kind, models, **options).start()


async def stop_all(fakes: Sequence[FakeServer]) -> None:
    """Stop every fake (held requests are dropped)."""
    await asyncio.gather(*(f.stop() for f in fakes))


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Yield to the loop until ``predicate()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


def hash_order(session: str, keys: Sequence[str]) -> list[str]:
    """``keys`` in the rendezvous order of ``session`` (what sticky must follow)."""
    return sorted(keys, key=lambda k: sticky_weight(session, k), reverse=True)


def answered_port(reply: Mapping[str, Any]) -> int:
    """The port of the fake that answered (its reply says ``... port N``)."""
    content = reply["choices"][0]["message"]["content"]
    match = re.search(r"port (\d+)", content)
    assert match, content
    return int(match.group(1))


def chats(fake: FakeServer) -> int:
    """Chat requests a fake received."""
    return sum(
        1
        for r in fake.requests
        if r["path"].endswith("/chat/completions") or r["path"] == "/api/chat"
    )


@asynccontextmanager
async def gateway(text: str) -> AsyncIterator[Gateway]:
    """A gateway serving ``text`` on 127.0.0.1, a free port; stopped on exit."""
    gw = Gateway(parse_config(text, environ={}))
    await gw.start("127.0.0.1", 0)
    try:
        yield gw
    finally:
        await gw.stop()


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> tuple[int, str | None, Any]:
    """POST JSON; (status, ``X-Routed-To``, parsed body)."""
    async with session.post(url, json=body, headers=headers or {}) as resp:
        return resp.status, resp.headers.get("X-Routed-To"), await resp.json(content_type=None)


def body(
    messages: Sequence[Mapping[str, Any]] = HI, model: str = MODEL, **extra: Any
) -> dict[str, Any]:
    """An OpenAI chat request body."""
    return {"model": model, "messages": list(messages), "max_tokens": 4, **extra}
