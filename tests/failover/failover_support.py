"""Helpers for failover tests: configs around running fakes, a runner, who answered."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from routing.config import Config, parse_config

T = TypeVar("T")

KEY_ENV = "ROUTING_TEST_API_KEY"
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
HI = [{"role": "user", "content": "hi"}]


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run ``coro`` in a fresh event loop, bounded by ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def config_for(
    kind: str,
    ports: Sequence[int],
    *,
    attempt_timeout: float = 5.0,
    retries: int = 2,
    deadline: float = 10.0,
) -> Config:
    """One provider ``kind`` with instances ``i0, i1, …`` on ``ports``, all routed to."""
    lines = [
        "version: 1",
        "defaults:",
        f"  request_timeout: {deadline}",
        f"  retries: {retries}",
        "  connect_timeout: 1.0",
        "  probe: {timeout: 1.0, ttl: 600}",
        "providers:",
        f"  {kind}:",
        f"    api: {API[kind]}",
        "    instances:",
    ]
    for i, port in enumerate(ports):
        lines.append(
            f"      i{i}: {{url: 'http://127.0.0.1:{port}', api_key_env: {KEY_ENV}, "
            f"request_timeout: {attempt_timeout}}}"
        )
    lines += ["rules:", f"  - route: {kind}"]
    return parse_config("\n".join(lines) + "\n", environ={KEY_ENV: "sk-test"})


def answered_port(text: str) -> int:
    """The port named by a fake's reply text ``I am MODEL on KIND port PORT``."""
    match = re.search(r"port (\d+)$", text)
    assert match, text
    return int(match.group(1))


def stream_text(chunks: Sequence[dict[str, Any]]) -> str:
    """The assistant text of a list of chunks."""
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
