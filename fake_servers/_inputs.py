"""What a chat request carries, and the reply a fake plans for it.

Three request shapes are read: :attr:`Shape.OPENAI` (OpenAI chat: llama.cpp, LM Studio, OpenAI,
Ollama's ``/v1``), :attr:`Shape.OLLAMA` (``/api/chat``, ``/api/generate``) and
:attr:`Shape.ANTHROPIC` (``/v1/messages``).

The reply (:func:`plan_reply`) is either text or tool calls:

- **Tool calls** when the request offers tools, carries no tool results yet, and either its last
  message is a user message containing ``CALL_TOOLS`` (``CALL_TOOLS:N`` asks for N calls,
  default 2) or the fake's ``tool_calls`` setting is above 0 (then that many calls, no trigger
  word needed). Call *i* (from 0) calls tool ``i mod len(tools)`` of the request's list with the
  arguments ``{"city": "Paris", "n": i + 1}``. With ``INTERLEAVE_TOOLS`` in that message too,
  OpenAI-style fakes stream the calls interleaved (:attr:`Reply.interleaved`).
- **Text** otherwise: ``I am MODEL on KIND port PORT``, followed by ``; tool results: N`` when
  the request carries tool results (role ``tool`` messages; Anthropic ``tool_result`` blocks)
  and ``; images: N`` when it carries images (OpenAI ``image_url`` parts; Ollama ``images`` on a
  message; Anthropic ``image`` blocks, also inside tool results). If the text contains one of
  the request's stop sequences (OpenAI ``stop``, Ollama ``options.stop``, Anthropic
  ``stop_sequences``), it is cut before the first one found.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fake_servers._core import FakeState, JSONDict, split_reply

POISON = "POISON"
"""A request whose last user message contains this fails under the ``poison`` fault."""

CALL_TOOLS = "CALL_TOOLS"
"""A last user message containing this asks for tool calls (``CALL_TOOLS:N``: N of them)."""

INTERLEAVE_TOOLS = "INTERLEAVE_TOOLS"
"""With tool calls asked, a last user message containing this has them streamed interleaved."""

DEFAULT_TOOL_CALLS = 2
_CALL_TOOLS = re.compile(r"CALL_TOOLS(?::(\d+))?")
_FRAGMENT_SIZES = (3, 4, 5)


class Shape(enum.StrEnum):
    """The shape of a chat request body."""

    OPENAI = "openai"
    OLLAMA = "ollama"
    ANTHROPIC = "anthropic"


def _messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, Mapping)]


def _parts(content: Any) -> list[Mapping[str, Any]]:
    if not isinstance(content, list):
        return []
    return [part for part in content if isinstance(part, Mapping)]


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the ``text`` of its parts."""
    if isinstance(content, str):
        return content
    return "".join(str(p["text"]) for p in _parts(content) if isinstance(p.get("text"), str))


def last_user_text(body: Any) -> str:
    """The text of the last user message (``/api/generate``: the prompt); ``""`` if none."""
    if not isinstance(body, Mapping):
        return ""
    users = [m for m in _messages(body) if m.get("role") == "user"]
    if users:
        return text_of(users[-1].get("content"))
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def tool_names(shape: Shape, body: Mapping[str, Any]) -> list[str]:
    """The names of the tools the request offers, in order."""
    tools = body.get("tools")
    names: list[str] = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, Mapping):
            continue
        holder = tool if shape is Shape.ANTHROPIC else tool.get("function")
        if isinstance(holder, Mapping) and isinstance(holder.get("name"), str):
            names.append(holder["name"])
    return names


def _anthropic_blocks(body: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every content block, nested ``tool_result`` content included."""
    for message in _messages(body):
        for block in _parts(message.get("content")):
            yield block
            if block.get("type") == "tool_result":
                yield from _parts(block.get("content"))


def count_tool_results(shape: Shape, body: Mapping[str, Any]) -> int:
    """How many tool results the request carries."""
    if shape is Shape.ANTHROPIC:
        return sum(1 for b in _anthropic_blocks(body) if b.get("type") == "tool_result")
    return sum(1 for m in _messages(body) if m.get("role") == "tool")


def count_images(shape: Shape, body: Mapping[str, Any]) -> int:
    """How many images the request carries."""
    if shape is Shape.ANTHROPIC:
        return sum(1 for b in _anthropic_blocks(body) if b.get("type") == "image")
    if shape is Shape.OLLAMA:
        images = [m.get("images") for m in _messages(body)] + [body.get("images")]
        return sum(len(i) for i in images if isinstance(i, list))
    return sum(
        1
        for m in _messages(body)
        for part in _parts(m.get("content"))
        if part.get("type") == "image_url"
    )


def stop_sequences(shape: Shape, body: Mapping[str, Any]) -> list[str]:
    """The request's stop sequences (empty strings ignored)."""
    if shape is Shape.ANTHROPIC:
        stops: Any = body.get("stop_sequences")
    elif shape is Shape.OLLAMA:
        options = body.get("options")
        stops = options.get("stop") if isinstance(options, Mapping) else None
    else:
        stops = body.get("stop")
    if isinstance(stops, str):
        stops = [stops]
    if not isinstance(stops, list):
        return []
    return [s for s in stops if isinstance(s, str) and s]


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, str | None]:
    """``text`` up to the first stop sequence in it, and that sequence (None: no cut)."""
    found = [(text.find(s), s) for s in stops if s in text]
    if not found:
        return text, None
    index, stop = min(found, key=lambda pair: pair[0])
    return text[:index], stop


def fragments(text: str) -> list[str]:
    """``text`` in pieces of 3, 4, 5, 3, ... characters, as argument deltas are streamed."""
    pieces: list[str] = []
    start, turn = 0, 0
    while start < len(text):
        size = _FRAGMENT_SIZES[turn % len(_FRAGMENT_SIZES)]
        pieces.append(text[start : start + size])
        start, turn = start + size, turn + 1
    return pieces


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call the fake makes."""

    id: str
    name: str
    arguments: JSONDict

    @property
    def arguments_json(self) -> str:
        """The arguments as compact JSON text (as OpenAI-style servers send them)."""
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Reply:
    """What a fake answers: text (maybe cut at a stop sequence) or tool calls."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    stop_sequence: str | None = None
    """The stop sequence that cut the text, if one did."""
    interleaved: bool = False
    """Stream the tool calls interleaved: every call's opening delta first, then their
    arguments fragments in turn (call 0, 1, 0, 1, ...), as OpenAI's format allows."""

    @property
    def pieces(self) -> list[str]:
        """The text as stream pieces (none when the text is empty)."""
        return split_reply(self.text) if self.text else []

    @property
    def tokens(self) -> int:
        """A deterministic completion token count."""
        return len(self.pieces) + sum(len(fragments(c.arguments_json)) for c in self.tool_calls)


def _tool_call_count(state: FakeState, body: Mapping[str, Any], has_results: bool) -> int:
    if has_results:
        return 0
    if state.tool_calls > 0:
        return state.tool_calls
    messages = _messages(body)
    if not messages or messages[-1].get("role") != "user":
        return 0
    match = _CALL_TOOLS.search(text_of(messages[-1].get("content")))
    if match is None:
        return 0
    return int(match.group(1)) if match.group(1) else DEFAULT_TOOL_CALLS


def plan_reply(
    state: FakeState, model: str, shape: Shape, body: Any, call_id: Callable[[], str]
) -> Reply:
    """The reply of ``state``'s fake, answering as ``model``, to a chat request ``body``."""
    body = body if isinstance(body, Mapping) else {}
    tools = tool_names(shape, body)
    results = count_tool_results(shape, body)
    count = _tool_call_count(state, body, results > 0) if tools else 0
    if count:
        calls = tuple(
            ToolCall(call_id(), tools[i % len(tools)], {"city": "Paris", "n": i + 1})
            for i in range(count)
        )
        return Reply("", calls, interleaved=INTERLEAVE_TOOLS in last_user_text(body))
    text = state.reply_text(model)
    if results:
        text += f"; tool results: {results}"
    if images := count_images(shape, body):
        text += f"; images: {images}"
    cut, stop = cut_at_stop(text, stop_sequences(shape, body))
    return Reply(cut, (), stop)
