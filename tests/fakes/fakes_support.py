"""Helpers shared by the fake-server tests: per-kind chat requests and stream parsing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

KEY_HEADERS: dict[str, dict[str, str]] = {
    "llamacpp": {},
    "ollama": {},
    "lmstudio": {},
    "openai": {"Authorization": "Bearer sk-test"},
    "anthropic": {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
}

HEALTH_PATH = {
    "llamacpp": "/health",
    "ollama": "/api/version",
    "lmstudio": "/v1/models",
    "openai": "/v1/models",
    "anthropic": "/v1/models",
}


@dataclass(frozen=True)
class ChatCase:
    """How to ask one kind for a chat reply and read the text back."""

    path: str
    body: Callable[[str, bool], dict[str, Any]]
    text: Callable[[dict[str, Any]], str]
    stream_text: Callable[[list[dict[str, Any]]], str]


def _openai_body(model: str, stream: bool) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}


def _openai_stream_text(events: list[dict[str, Any]]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")
    )


CHAT: dict[str, ChatCase] = {
    kind: ChatCase(
        "/v1/chat/completions",
        _openai_body,
        lambda r: str(r["choices"][0]["message"]["content"]),
        _openai_stream_text,
    )
    for kind in ("llamacpp", "lmstudio", "openai")
}
CHAT["ollama"] = ChatCase(
    "/api/chat",
    lambda m, s: {"model": m, "messages": [{"role": "user", "content": "hi"}], "stream": s},
    lambda r: str(r["message"]["content"]),
    lambda events: "".join(e["message"]["content"] for e in events),
)
CHAT["anthropic"] = ChatCase(
    "/v1/messages",
    lambda m, s: {
        "model": m,
        "max_tokens": 16,
        "system": "be brief",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": s,
    },
    lambda r: str(r["content"][0]["text"]),
    lambda events: "".join(
        e["delta"]["text"] for e in events if e.get("type") == "content_block_delta"
    ),
)


def parse_sse(text: str) -> list[tuple[str | None, str]]:
    """``(event, data)`` pairs of an SSE body (``event`` None when absent)."""
    events: list[tuple[str | None, str]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((event, "\n".join(data)))
    return events


def stream_events(kind: str, body: str) -> list[dict[str, Any]]:
    """The JSON events of a stream body (SSE, or NDJSON for Ollama), without ``[DONE]``."""
    if kind == "ollama":
        return [json.loads(line) for line in body.splitlines() if line.strip()]
    return [json.loads(data) for _, data in parse_sse(body) if data != "[DONE]"]


def chat(
    client: httpx.Client, url: str, kind: str, model: str, stream: bool = False
) -> httpx.Response:
    """Send the kind's chat request for ``model``."""
    case = CHAT[kind]
    return client.post(url + case.path, json=case.body(model, stream), headers=KEY_HEADERS[kind])


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)
