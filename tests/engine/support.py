"""Helpers for engine tests: run a coroutine, build configs around fake servers."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from routing.config import Config, parse_config

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a fresh event loop (tests are plain sync functions)."""
    return asyncio.run(coro)


class FakeClock:
    """A clock tests move by hand, so TTLs and breaker backoffs pass without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def config(providers: str, rules: str = "", extra: str = "") -> Config:
    """A config from YAML fragments (providers block indented by 2, rules by 2)."""
    text = "version: 1\ndefaults:\n  probe: {timeout: 0.5, ttl: 5}\n" + extra
    text += "providers:\n" + providers
    if rules:
        text += "rules:\n" + rules
    return parse_config(text, environ={})


def provider(name: str, api: str, **ports: int) -> str:
    """A providers-block entry: ``provider("llamacpp", "openai", a=8080)``."""
    lines = [f"  {name}:\n    api: {api}\n    instances:\n"]
    lines += [f"      {inst}: {{port: {port}}}\n" for inst, port in ports.items()]
    return "".join(lines)
