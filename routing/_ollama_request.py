"""An Ollama ``/api/chat`` request as the OpenAI-shaped request the router serves.

The body is valid per :data:`routing._request_specs.OLLAMA_CHAT` (checked first). Nothing
the client sent is dropped silently:

===============================  ==========================================================
Ollama                           OpenAI request
===============================  ==========================================================
``messages[].images`` (base64)   content parts ``image_url`` with a ``data:`` URL (JPEG,
                                 PNG, GIF, WebP told by their first bytes; PNG otherwise)
``messages[].tool_calls``        ``tool_calls`` with ids (``call_<message>_<call>`` unless
                                 given), arguments as a JSON string
``messages[].tool_name``         ``name``; ``tool_call_id`` = the id of the call it answers
                                 (same name, first unanswered), unless given
``messages[].thinking``          dropped, on purpose: earlier turns' reasoning has no OpenAI
                                 field, and chat templates discard it anyway
other message fields             kept as they are
``format``: ``"json"``/schema    ``response_format`` ``json_object`` / ``json_schema``
``options``: temperature, top_p, the same fields; ``num_predict`` >= 0 is ``max_tokens``
seed, stop, num_predict,
presence/frequency_penalty
``think``: "high"/"medium"/...   ``reasoning_effort``
everything else                  :data:`OLLAMA_PRIVATE` (other ``options``, ``keep_alive``,
                                 ``think``, unknown fields): the Ollama adapter forwards it,
                                 the other API styles never send it
===============================  ==========================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from routing._request_specs import OLLAMA_PRIVATE

__all__ = ["ollama_chat_to_openai"]

# Ollama ``options`` -> OpenAI request fields (integers among them: Ollama accepts 4096.0).
_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "num_predict": "max_tokens",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
_INTEGER_OPTIONS = frozenset({"seed", "num_predict"})
_CONVERTED = frozenset({"model", "messages", "stream", "options", "format", "tools"})
_MESSAGE_KEYS = frozenset({"role", "content", "images", "tool_calls", "tool_name", "thinking"})

# The base64 text an image file starts with -> its media type.
_IMAGE_MAGIC = (
    ("/9j/", "image/jpeg"),
    ("iVBORw0KGgo", "image/png"),
    ("R0lGOD", "image/gif"),
    ("UklGR", "image/webp"),
)


def ollama_chat_to_openai(body: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI chat-completions request for a valid Ollama ``/api/chat`` ``body``."""
    request: dict[str, Any] = {
        "model": body["model"],
        "messages": _messages(body["messages"]),
        "stream": body.get("stream") is not False,
    }
    private: dict[str, Any] = {}
    other_options: dict[str, Any] = {}
    for name, value in (body.get("options") or {}).items():
        target = _OPTIONS.get(name)
        if value is None:
            continue
        if target is None or (name == "num_predict" and value < 0):
            other_options[name] = value  # -1 / -2: "no limit" / "fill the context"
        else:
            request[target] = int(value) if name in _INTEGER_OPTIONS else value
    if other_options:
        private["options"] = other_options
    fmt = body.get("format")
    if fmt == "json":
        request["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict):
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": fmt},
        }
    if body.get("tools"):
        request["tools"] = [
            tool if "type" in tool else {"type": "function", **tool} for tool in body["tools"]
        ]
    think = body.get("think")
    if isinstance(think, str):
        request["reasoning_effort"] = think
    for name, value in body.items():
        if name not in _CONVERTED and value is not None:
            private[name] = value  # keep_alive, think, fields newer than this code
    if private:
        request[OLLAMA_PRIVATE] = private
    return request


def _messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    unanswered: list[tuple[str, str]] = []  # (id, name) of tool calls not yet answered
    for i, message in enumerate(messages):
        converted = {k: v for k, v in message.items() if k not in _MESSAGE_KEYS}
        role = converted["role"] = message["role"]
        content = message.get("content") or ""
        images = message.get("images")
        if images:
            parts: list[dict[str, Any]] = [{"type": "text", "text": content}] if content else []
            parts.extend(
                {"type": "image_url", "image_url": {"url": data_url(image)}} for image in images
            )
            converted["content"] = parts
        else:
            converted["content"] = content
        calls = message.get("tool_calls")
        if calls:
            converted["tool_calls"] = [
                _tool_call(call, f"call_{i}_{j}", unanswered) for j, call in enumerate(calls)
            ]
        if role == "tool":
            name = message.get("tool_name")
            if name:
                converted["name"] = name
            if "tool_call_id" not in converted:
                call_id = _answered(unanswered, name)
                if call_id is not None:
                    converted["tool_call_id"] = call_id
        out.append(converted)
    return out


def _tool_call(
    call: Mapping[str, Any], default_id: str, unanswered: list[tuple[str, str]]
) -> dict[str, Any]:
    function = call["function"]
    call_id = call.get("id") or default_id
    name = function["name"]
    unanswered.append((call_id, name))
    arguments = function.get("arguments")
    return {
        "id": call_id,
        "type": "function",
        "function": {
            "name": name,
            "arguments": json.dumps(arguments if arguments is not None else {}, ensure_ascii=False),
        },
    }


def _answered(unanswered: list[tuple[str, str]], name: str | None) -> str | None:
    """The id of the call a tool result answers: the first unanswered one of that name."""
    for position, (call_id, call_name) in enumerate(unanswered):
        if name is None or call_name == name:
            del unanswered[position]
            return call_id
    if unanswered:
        return unanswered.pop(0)[0]
    return None


def data_url(image: str) -> str:
    """An Ollama image (base64) as a ``data:`` URL; URLs given as such are kept."""
    if image.startswith(("data:", "http://", "https://")):
        return image
    for magic, media in _IMAGE_MAGIC:
        if image.startswith(magic):
            return f"data:{media};base64,{image}"
    return f"data:image/png;base64,{image}"
