"""OpenAI chat replies and chunks as Anthropic messages and events (the Anthropic door's
way back from backends that do not speak Messages; the way there is
:mod:`routing._anthropic_convert`).

Reply (OpenAI -> Anthropic)

==================================  =========================================================
OpenAI chat                         Anthropic message
==================================  =========================================================
``id``, ``model``                   ``id``, ``model`` (as the backend named them)
``message.reasoning_content``       a ``thinking`` block first (``signature`` empty)
``message.content``                 a ``text`` block
``message.tool_calls[]``            ``tool_use`` blocks (``input`` = the parsed arguments;
                                    text that is no JSON object: ``{"_raw": text}``)
``finish_reason`` stop / length /   ``stop_reason`` end_turn / max_tokens / tool_use /
tool_calls / content_filter         refusal; ``stop_sequence`` null (OpenAI does not say
                                    which stop sequence ended the text)
``usage`` prompt / completion       ``input_tokens`` / ``output_tokens``;
tokens, cached tokens               ``cache_read_input_tokens``
==================================  =========================================================

Streamed, :class:`EventStream` emits Anthropic's events in Anthropic's order:
``message_start``, then per content block ``content_block_start``, its deltas
(``thinking_delta``, ``text_delta``, ``input_json_delta``) and ``content_block_stop``
(``ping`` after the first block starts), then ``message_delta`` (stop reason, usage) and
``message_stop``.  Tool-call deltas are reassembled by their OpenAI ``index`` and each call
is sent as one ``tool_use`` block once the model has finished: OpenAI may interleave calls,
Anthropic's blocks cannot be.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

__all__ = ["EventStream", "chat_to_message", "translate_events"]

_STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments or "{}")
    except (ValueError, TypeError, RecursionError):
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def _usage(usage: Any) -> dict[str, int]:
    usage = usage if isinstance(usage, Mapping) else {}
    out = {
        "input_tokens": _count(usage.get("prompt_tokens")),
        "output_tokens": _count(usage.get("completion_tokens")),
    }
    details = usage.get("prompt_tokens_details")
    if isinstance(details, Mapping) and details.get("cached_tokens") is not None:
        out["cache_read_input_tokens"] = _count(details.get("cached_tokens"))
    return out


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def chat_to_message(reply: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` as an Anthropic message."""
    choice = (reply.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("reasoning_content"):
        content.append(
            {"type": "thinking", "thinking": str(message["reasoning_content"]), "signature": ""}
        )
    if message.get("content"):
        content.append({"type": "text", "text": str(message["content"])})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": function.get("name", ""),
                "input": _input(function.get("arguments")),
            }
        )
    return {
        "id": reply.get("id", ""),
        "type": "message",
        "role": "assistant",
        "model": reply.get("model", ""),
        "content": content,
        "stop_reason": _STOP_REASON.get(str(choice.get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": _usage(reply.get("usage")),
    }


class EventStream:
    """Turns the OpenAI chunks of one stream into Anthropic's named events (as dicts)."""

    def __init__(self) -> None:
        self.started = False
        self.pinged = False
        self.index = 0  # the next content block's index
        self.open: str | None = None  # the kind of the block being streamed
        self.calls: dict[int, dict[str, Any]] = {}  # OpenAI tool-call index -> the call
        self.finish: str | None = None
        self.usage: Any = None

    def _start(self, chunk: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.started = True
        message = {
            "id": chunk.get("id", ""),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model", ""),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [{"type": "message_start", "message": message}]

    def _open(self, kind: str, block: dict[str, Any], out: list[dict[str, Any]]) -> None:
        self._close(out)
        out.append({"type": "content_block_start", "index": self.index, "content_block": block})
        self.open = kind
        if not self.pinged:
            self.pinged = True
            out.append({"type": "ping"})

    def _close(self, out: list[dict[str, Any]]) -> None:
        if self.open is not None:
            out.append({"type": "content_block_stop", "index": self.index})
            self.index += 1
            self.open = None

    def chunk(self, chunk: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The events for one OpenAI chunk (possibly none)."""
        out = [] if self.started else self._start(chunk)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        choices = chunk.get("choices") or ()
        choice = choices[0] if choices and isinstance(choices[0], Mapping) else {}
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            if self.open != "thinking":
                self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
            out.append(
                {
                    "type": "content_block_delta",
                    "index": self.index,
                    "delta": {"type": "thinking_delta", "thinking": reasoning},
                }
            )
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self.open != "text":
                self._open("text", {"type": "text", "text": ""}, out)
            out.append(
                {
                    "type": "content_block_delta",
                    "index": self.index,
                    "delta": {"type": "text_delta", "text": text},
                }
            )
        for position, call in enumerate(delta.get("tool_calls") or ()):
            self._add_call(call, position)
        if choice.get("finish_reason"):
            self.finish = str(choice["finish_reason"])
        return out

    def _add_call(self, call: Any, position: int) -> None:
        if not isinstance(call, Mapping):
            return
        index = call.get("index", position)
        entry = self.calls.setdefault(
            index if isinstance(index, int) else position, {"id": "", "name": "", "fragments": []}
        )
        if call.get("id"):
            entry["id"] = call["id"]
        function = call.get("function") or {}
        if isinstance(function.get("name"), str):
            entry["name"] += function["name"]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            entry["fragments"].append(arguments)
        elif isinstance(arguments, dict):
            entry["fragments"].append(json.dumps(arguments, ensure_ascii=False))

    def end(self) -> list[dict[str, Any]]:
        """The closing events: the tool calls, ``message_delta`` and ``message_stop``."""
        out: list[dict[str, Any]] = [] if self.started else self._start({})
        for _, call in sorted(self.calls.items()):
            self._open(
                "tool_use",
                {"type": "tool_use", "id": call["id"], "name": call["name"], "input": {}},
                out,
            )
            for fragment in call["fragments"]:
                out.append(
                    {
                        "type": "content_block_delta",
                        "index": self.index,
                        "delta": {"type": "input_json_delta", "partial_json": fragment},
                    }
                )
        self._close(out)
        if not self.pinged:
            out.append({"type": "ping"})
        finish = self.finish or ("tool_calls" if self.calls else "stop")
        usage = _usage(self.usage)
        out.append(
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": _STOP_REASON.get(finish, "end_turn"),
                    "stop_sequence": None,
                },
                "usage": usage,
            }
        )
        out.append({"type": "message_stop"})
        return out


async def translate_events(
    chunks: AsyncIterator[dict[str, Any]],
) -> AsyncGenerator[dict[str, Any], None]:
    """Anthropic's events for a stream of OpenAI chunks (closing ``chunks`` when closed)."""
    events = EventStream()
    try:
        async for chunk in chunks:
            for event in events.chunk(chunk):
                yield event
        for event in events.end():
            yield event
    finally:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()
