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


MODEL = {
    "llamacpp": "model.gguf",
    "ollama": "llama3:latest",
    "lmstudio": "qwen2.5-7b-instruct",
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
}
"""The default model of each kind."""

MODELS_PATH = {
    "llamacpp": "/v1/models",
    "ollama": "/api/tags",
    "lmstudio": "/v1/models",
    "openai": "/v1/models",
    "anthropic": "/v1/models",
}
"""The model-list probe of each kind."""


def error_message(kind: str, body: Any) -> str:
    """The message of an error body in the kind's own shape (fails on a wrong shape)."""
    if kind == "ollama":
        assert isinstance(body["error"], str)
        return str(body["error"])
    if kind == "anthropic":
        assert body["type"] == "error"
        return str(body["error"]["message"])
    assert set(body) == {"error"}
    assert isinstance(body["error"]["type"], str)
    return str(body["error"]["message"])


TOOL_NAMES = ["get_weather", "get_time", "get_news"]


def tools_of(kind: str, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Tool definitions in the kind's request format."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    chosen = TOOL_NAMES if names is None else names
    if kind == "anthropic":
        return [{"name": n, "description": n, "input_schema": schema} for n in chosen]
    return [
        {"type": "function", "function": {"name": n, "description": n, "parameters": schema}}
        for n in chosen
    ]


def chat_body(
    kind: str, messages: list[dict[str, Any]], stream: bool = False, **extra: Any
) -> dict[str, Any]:
    """The kind's chat request for its default model, with ``messages`` and ``extra`` fields."""
    body = CHAT[kind].body(MODEL[kind], stream)
    body["messages"] = messages
    body.update(extra)
    return body


def post_chat(
    client: httpx.Client, url: str, kind: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    """POST ``body`` to the kind's chat path with its key headers (plus ``headers``)."""
    return client.post(url + CHAT[kind].path, json=body, headers=KEY_HEADERS[kind] | headers)


def reply_text(kind: str, response: httpx.Response, stream: bool) -> str:
    """The assistant text of a chat reply, streamed or not."""
    if stream:
        return CHAT[kind].stream_text(stream_events(kind, response.text))
    return CHAT[kind].text(response.json())


def tool_calls_of(kind: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(name, arguments)`` of each tool call in a non-stream reply."""
    if kind == "anthropic":
        return [(b["name"], b["input"]) for b in body["content"] if b["type"] == "tool_use"]
    if kind == "ollama":
        return [
            (c["function"]["name"], c["function"]["arguments"])
            for c in body["message"]["tool_calls"]
        ]
    calls = body["choices"][0]["message"]["tool_calls"]
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]


def streamed_tool_calls(
    kind: str, events: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """Reassemble the tool calls of a stream: by ``index`` (OpenAI), by content block
    (Anthropic), whole calls (Ollama)."""
    if kind == "ollama":
        return [
            (c["function"]["name"], c["function"]["arguments"])
            for e in events
            for c in e["message"].get("tool_calls", [])
        ]
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for event in events:
        if kind == "anthropic":
            if event["type"] == "content_block_start":
                names[event["index"]] = event["content_block"]["name"]
                arguments[event["index"]] = ""
            elif event["type"] == "content_block_delta":
                arguments[event["index"]] += event["delta"]["partial_json"]
            continue
        for choice in event["choices"]:
            for call in choice["delta"].get("tool_calls", []):
                index = call["index"]
                function = call.get("function", {})
                if "name" in function:
                    names[index] = function["name"]
                arguments[index] = arguments.get(index, "") + function.get("arguments", "")
    return [(names[i], json.loads(arguments[i])) for i in sorted(names)]
