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
``message_stop``.

Tool calls are streamed as Anthropic streams them: a ``tool_use`` block starts (``id``,
``name``, ``input: {}``) with the first delta of a call, which names it (OpenAI sends the id
and name whole, there), each arguments fragment is an ``input_json_delta`` as it arrives
(together exactly the arguments the backend sent), and the block stops when the next block
starts or the stream ends.  Backends send calls one after the other, by ``index``; Anthropic's
blocks cannot interleave, so a new call closes the open one only once that one's arguments
are a whole JSON value.  The fallback:

- a call starting while the open call's arguments are not whole yet (the backend interleaves
  its calls), or whose first delta has no name, is held, and so is every call after it; held
  calls are sent whole (start, their fragments, stop) at the end, by index, while the open
  call keeps streaming: every block's input is still exactly its call's arguments;
- a fragment for a call already closed cannot join its block any more: it is held the same
  way and sent at the end as a block of its own, with the call's id and name.  That happens
  only to text after a whole JSON value (which valid arguments never have), or when a text
  or thinking delta comes in the middle of a call's arguments (no backend is known to).
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


class _ToolCall:
    """One OpenAI tool call on its way to a ``tool_use`` block."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self, id: str = "", name: str = "") -> None:
        self.id = id
        self.name = name
        self.arguments: list[str] = []  # the fragments, as the backend sent them

    def block(self) -> dict[str, Any]:
        return {"type": "tool_use", "id": self.id, "name": self.name, "input": {}}

    def whole(self) -> bool:
        """True when the arguments so far are a whole JSON value (no fragment can follow)."""
        try:
            json.loads("".join(self.arguments))
        except (ValueError, RecursionError):
            return False
        return True


def _fragment(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    if isinstance(arguments, dict):
        return json.dumps(arguments, ensure_ascii=False)
    return ""


class EventStream:
    """Turns the OpenAI chunks of one stream into Anthropic's named events (as dicts)."""

    def __init__(self) -> None:
        self.started = False
        self.pinged = False
        self.index = 0  # the next content block's index
        self.open: str | None = None  # the kind of the block being streamed
        self.tool: _ToolCall | None = None  # the tool call whose block is open
        self.streamed: dict[int, _ToolCall] = {}  # OpenAI index -> a call given a block
        self.held: dict[int, _ToolCall] = {}  # OpenAI index -> a call sent whole at the end
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
            self.tool = None

    def _input_delta(self, fragment: str, out: list[dict[str, Any]]) -> None:
        out.append(
            {
                "type": "content_block_delta",
                "index": self.index,
                "delta": {"type": "input_json_delta", "partial_json": fragment},
            }
        )

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
            if isinstance(call, Mapping):
                self._add_call(call, position, out)
        if choice.get("finish_reason"):
            self.finish = str(choice["finish_reason"])
        return out

    def _add_call(self, call: Mapping[str, Any], position: int, out: list[dict[str, Any]]) -> None:
        index = call.get("index", position)
        index = index if isinstance(index, int) else position
        function = call.get("function")
        function = function if isinstance(function, Mapping) else {}
        fragment = _fragment(function.get("arguments"))
        streamed = self.streamed.get(index)
        if streamed is not None and streamed is self.tool:  # the open block's call
            if fragment:
                streamed.arguments.append(fragment)
                self._input_delta(fragment, out)
            return
        ident, name = call.get("id"), function.get("name")
        ident = ident if isinstance(ident, str) else ""
        name = name if isinstance(name, str) else ""
        held = self.held.get(index)
        if (
            streamed is None
            and held is None
            and not self.held
            and name
            and (self.tool is None or self.tool.whole())
        ):  # a new call, and the open one (if any) is complete: its block starts now
            started = self.streamed[index] = _ToolCall(ident, name)
            self._open("tool_use", started.block(), out)
            self.tool = started
            if fragment:
                started.arguments.append(fragment)
                self._input_delta(fragment, out)
            return
        if held is None:  # interleaved, or a fragment for a call already closed: held
            held = self.held[index] = (
                _ToolCall(streamed.id, streamed.name) if streamed is not None else _ToolCall()
            )
        if streamed is None:
            held.id = held.id or ident
            held.name += name
        if fragment:
            held.arguments.append(fragment)

    def end(self) -> list[dict[str, Any]]:
        """The closing events: the held tool calls, ``message_delta`` and ``message_stop``."""
        out: list[dict[str, Any]] = [] if self.started else self._start({})
        for _, call in sorted(self.held.items()):
            self._open("tool_use", call.block(), out)
            for fragment in call.arguments:
                self._input_delta(fragment, out)
        self._close(out)
        if not self.pinged:
            out.append({"type": "ping"})
        finish = self.finish or ("tool_calls" if self.streamed or self.held else "stop")
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
