"""What a reply or a request means, whatever its API style, so that styles can be compared.

:class:`Meaning` is what a client gets (text, tool calls with parsed arguments, finish reason,
usage, model); :class:`Sent` is what a backend received (system text, user texts, stop
sequences, tools offered, tool calls and results in the history, images). Each is read from
the objects the real client packages return, or from the JSON body a fake logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fidelity_support import (
    CALL_ARGS,
    MODELS,
    PNG_B64,
    RESULTS,
    STOPS,
    STYLE,
    SYSTEM,
    TOOL_NAMES,
    Scenario,
)

Call = tuple[str, Any]
"""A tool call: its name and its arguments parsed as JSON."""

_ANTHROPIC_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
}


@dataclass(frozen=True, slots=True)
class Meaning:
    """A reply reduced to what every API style can say."""

    model: str
    text: str
    calls: tuple[Call, ...]
    finish: str
    """``stop``, ``tool_calls`` or ``length`` (Ollama: ``tool_calls`` when it made calls)."""
    usage: tuple[int, int] | None
    """(prompt tokens, completion tokens), None when the reply carries no usage."""

    def without_usage(self) -> Meaning:
        """The same meaning, usage left out."""
        return Meaning(self.model, self.text, self.calls, self.finish, None)


def expected_calls(s: Scenario) -> tuple[Call, ...]:
    """The tool calls every fake makes for ``s``."""
    return tuple(zip(TOOL_NAMES, CALL_ARGS, strict=True)) if s.calls else ()


def openai_reply(reply: Any) -> Meaning:
    """An ``openai`` ``ChatCompletion``."""
    choice = reply.choices[0]
    calls = tuple(
        (c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or ()
    )
    usage = reply.usage
    return Meaning(
        reply.model,
        choice.message.content or "",
        calls,
        choice.finish_reason,
        None if usage is None else (usage.prompt_tokens, usage.completion_tokens),
    )


@dataclass(slots=True)
class OpenAIStream:
    """An ``openai`` chunk stream accumulated the way OpenAI documents: deltas by ``index``."""

    chunks: list[Any]
    text: str = ""
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finishes: list[str] = field(default_factory=list)
    usage_chunks: list[Any] = field(default_factory=list)
    models: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, chunks: Iterable[Any]) -> OpenAIStream:
        """Accumulate ``chunks``."""
        stream = cls(list(chunks))
        for chunk in stream.chunks:
            stream.models.add(chunk.model)
            if chunk.usage is not None:
                stream.usage_chunks.append(chunk)
            for choice in chunk.choices:
                stream.text += choice.delta.content or ""
                if choice.finish_reason is not None:
                    stream.finishes.append(choice.finish_reason)
                for delta in choice.delta.tool_calls or ():
                    call = stream.calls.setdefault(
                        delta.index, {"id": "", "name": "", "arguments": ""}
                    )
                    call["id"] += delta.id or ""
                    if delta.function is not None:
                        call["name"] += delta.function.name or ""
                        call["arguments"] += delta.function.arguments or ""
        return stream

    def meaning(self) -> Meaning:
        """The stream's meaning (usage from its usage chunk, if any)."""
        calls = tuple(
            (c["name"], json.loads(c["arguments"])) for _, c in sorted(self.calls.items())
        )
        usage = self.usage_chunks[-1].usage if self.usage_chunks else None
        return Meaning(
            ",".join(sorted(self.models)),
            self.text,
            calls,
            self.finishes[-1] if self.finishes else "",
            None if usage is None else (usage.prompt_tokens, usage.completion_tokens),
        )


def ollama_reply(reply: Any) -> Meaning:
    """An ``ollama`` ``ChatResponse`` (``stream=False``)."""
    return ollama_stream([reply])


def ollama_stream(parts: list[Any]) -> Meaning:
    """The parts of an ``ollama`` chat stream (the last one ``done``)."""
    calls = tuple(
        (c.function.name, dict(c.function.arguments))
        for p in parts
        for c in p.message.tool_calls or ()
    )
    final = parts[-1]
    finish = "tool_calls" if calls else str(final.done_reason)
    return Meaning(
        ",".join(sorted({p.model for p in parts})),
        "".join(p.message.content or "" for p in parts),
        calls,
        finish,
        (final.prompt_eval_count, final.eval_count),
    )


def anthropic_reply(reply: Any) -> Meaning:
    """An ``anthropic`` ``Message``."""
    text = "".join(b.text for b in reply.content if b.type == "text")
    calls = tuple((b.name, b.input) for b in reply.content if b.type == "tool_use")
    return Meaning(
        reply.model,
        text,
        calls,
        _ANTHROPIC_FINISH[reply.stop_reason],
        (reply.usage.input_tokens, reply.usage.output_tokens),
    )


def anthropic_stream(events: Iterable[Any]) -> Meaning:
    """The events of an ``anthropic`` Messages stream."""
    model, text, finish, prompt, completion = "", "", "", 0, 0
    blocks: dict[int, dict[str, Any]] = {}
    for event in events:
        if event.type == "message_start":
            model, prompt = event.message.model, event.message.usage.input_tokens
        elif event.type == "content_block_start" and event.content_block.type == "tool_use":
            blocks[event.index] = {"name": event.content_block.name, "json": ""}
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            text += event.delta.text
        elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            blocks[event.index]["json"] += event.delta.partial_json
        elif event.type == "message_delta":
            finish = _ANTHROPIC_FINISH[str(event.delta.stop_reason)]
            completion = event.usage.output_tokens
    calls = tuple((b["name"], json.loads(b["json"])) for _, b in sorted(blocks.items()))
    return Meaning(model, text, calls, finish, (prompt, completion))


@dataclass(frozen=True, slots=True)
class Sent:
    """A chat request as a backend received it, reduced to what every API style can say."""

    model: str
    stream: bool
    system: str = ""
    users: tuple[str, ...] = ()
    stops: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    calls: tuple[Call, ...] = ()
    """Tool calls of the history's assistant messages."""
    results: tuple[tuple[str | None, str], ...] = ()
    """Tool results: (name of the call answered, None if none; content)."""
    images: tuple[str, ...] = ()
    """Images as base64."""
    media: tuple[str, ...] = ()
    """The images' media types (Ollama's images have none)."""


def expected_sent(s: Scenario, kind: str, *, stream: bool) -> Sent:
    """What the backend of ``kind`` must receive for ``s``."""
    history = s.tool_results
    typed = s.image and STYLE[kind] != "ollama"
    return Sent(
        MODELS[kind],
        stream,
        SYSTEM if s.system else "",
        (s.user_text,),
        STOPS if s.stop else (),
        TOOL_NAMES if s.tools or history else (),
        tuple(zip(TOOL_NAMES, CALL_ARGS, strict=True)) if history else (),
        tuple(zip(TOOL_NAMES, RESULTS, strict=True)) if history else (),
        (PNG_B64,) if s.image else (),
        ("image/png",) if typed else (),
    )


def sent(style: str, body: Mapping[str, Any]) -> Sent:
    """The :class:`Sent` of a request ``body`` of ``style``."""
    if style == "anthropic":
        return _sent_anthropic(body)
    system = ""
    users: list[str] = []
    calls: list[Call] = []
    results: list[tuple[str | None, str]] = []
    images: list[str] = []
    media: list[str] = []
    names: dict[str, str] = {}  # OpenAI tool call id -> name
    for m in body["messages"]:
        role, content = m["role"], m.get("content")
        if role == "system":
            system += _text(content)
        elif role == "user":
            users.append(_text(content))
            images += m.get("images") or ()
            for part in _parts(content):
                if part.get("type") == "image_url":  # data:MEDIA;base64,DATA
                    head, _, data = part["image_url"]["url"].partition(";base64,")
                    media.append(head.removeprefix("data:"))
                    images.append(data)
        elif role == "assistant":
            for call in m.get("tool_calls") or ():
                fn = call["function"]
                args = fn["arguments"]
                calls.append((fn["name"], json.loads(args) if isinstance(args, str) else args))
                names[call.get("id", "")] = fn["name"]
        elif role == "tool":
            name = m.get("tool_name") if style == "ollama" else names.get(m["tool_call_id"])
            results.append((name, _text(content)))
    stops = (body.get("options") or {}).get("stop") if style == "ollama" else body.get("stop")
    return Sent(
        body["model"],
        body.get("stream", style == "ollama") is True,
        system,
        tuple(users),
        tuple([stops] if isinstance(stops, str) else stops or ()),
        tuple(t["function"]["name"] for t in body.get("tools") or ()),
        tuple(calls),
        tuple(results),
        tuple(images),
        tuple(media),
    )


def _sent_anthropic(body: Mapping[str, Any]) -> Sent:
    users: list[str] = []
    calls: list[Call] = []
    results: list[tuple[str | None, str]] = []
    images: list[str] = []
    media: list[str] = []
    names: dict[str, str] = {}
    for m in body["messages"]:
        blocks = _parts(m["content"]) or [{"type": "text", "text": m["content"]}]
        for b in blocks:
            if b["type"] == "tool_use":
                calls.append((b["name"], b["input"]))
                names[b["id"]] = b["name"]
            elif b["type"] == "tool_result":
                results.append((names.get(b["tool_use_id"]), _text(b.get("content"))))
            elif b["type"] == "image":
                images.append(b["source"]["data"])
                media.append(b["source"]["media_type"])
        texts = [b for b in blocks if b["type"] == "text"]
        if m["role"] == "user" and texts:
            users.append("".join(b["text"] for b in texts))
    return Sent(
        body["model"],
        body.get("stream") is True,
        _text(body.get("system")),
        tuple(users),
        tuple(body.get("stop_sequences") or ()),
        tuple(t["name"] for t in body.get("tools") or ()),
        tuple(calls),
        tuple(results),
        tuple(images),
        tuple(media),
    )


def _parts(content: Any) -> list[dict[str, Any]]:
    return [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(p.get("text", "")) for p in _parts(content))


OPENAI_VOLATILE = frozenset({"id", "created", "system_fingerprint", "timings"})
OLLAMA_VOLATILE = frozenset(
    {"created_at", "total_duration", "load_duration", "prompt_eval_duration", "eval_duration"}
)


def stable(value: Any, volatile: frozenset[str] = OPENAI_VOLATILE) -> Any:
    """``value`` (a client's reply dumped to plain data) without ids, times and timings."""
    if isinstance(value, dict):
        return {k: stable(v, volatile) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [stable(v, volatile) for v in value]
    return value
