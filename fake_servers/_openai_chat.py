"""OpenAI-style ``/v1/chat/completions``, shared by llama.cpp, LM Studio, OpenAI and Ollama.

Replies follow :func:`fake_servers._inputs.plan_reply`. Tool calls go out as
``message.tool_calls`` (with ``content: null``; llama.cpp: ``""``), finish ``tool_calls``, or,
streamed, one call after the other: a delta opening call *i* (``{"index": i, "id", "type":
"function", "function": {"name", "arguments": ""}}``; llama.cpp leaves out the empty
``arguments``), then deltas ``{"index": i, "function": {"arguments": FRAGMENT}}`` of 3-5
characters (asked with ``INTERLEAVE_TOOLS``: every call's opening delta first, then the calls'
fragments in turn); the last chunk has ``finish_reason: "tool_calls"``. A usage chunk
(``choices: []``) is sent only when ``stream_options.include_usage`` is true; llama.cpp
otherwise puts ``timings`` on the last chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fake_servers._core import (
    FakeState,
    JSONDict,
    StreamWriter,
    json_response,
    new_id,
    prompt_tokens,
    read_json,
)
from fake_servers._inputs import Reply, Shape, ToolCall, fragments, plan_reply
from fake_servers._wire import Wire, error_body


@dataclass(frozen=True, slots=True)
class OpenAIFlavor:
    """How one server family dresses the OpenAI chat wire format."""

    resolve: Callable[[FakeState, str | None], str | None]
    """The model answering a request naming ``model`` (``None``: not served)."""
    model_not_found: Callable[[str | None], web.Response]
    bad_request: Callable[[str], web.Response]
    system_fingerprint: str | None = None
    first_delta: Mapping[str, Any] = field(
        default_factory=lambda: {"role": "assistant", "content": ""}
    )
    timings: bool = False
    always_usage: bool = False
    """Send usage in the final stream chunk even without ``stream_options.include_usage``."""
    require_model: bool = False
    missing_messages: str = "Expected 'messages' to be an array"
    """The 400 message when ``messages`` is absent (llama.cpp: "'messages' is required")."""
    content_required: str | None = None
    """If set, the 400 message for a non-assistant message without ``content``."""
    tool_call_id: Callable[[], str] = lambda: new_id("call_", 24)
    """A new tool call id (OpenAI: ``call_`` and 24 characters)."""
    empty_arguments: bool = True
    """The delta opening a streamed tool call carries ``"arguments": ""`` (llama.cpp: no)."""
    tool_call_content: str | None = None
    """``message.content`` next to tool calls (OpenAI: null; llama.cpp: ``""``)."""


def _timings(prompt_n: int, predicted_n: int) -> JSONDict:
    return {
        "cache_n": 0,
        "prompt_n": prompt_n,
        "prompt_ms": 1.0 * prompt_n,
        "prompt_per_token_ms": 1.0,
        "prompt_per_second": 1000.0,
        "predicted_n": predicted_n,
        "predicted_ms": 2.0 * predicted_n,
        "predicted_per_token_ms": 2.0,
        "predicted_per_second": 500.0,
    }


def _usage(flavor: OpenAIFlavor, prompt: int, completion: int) -> JSONDict:
    usage: JSONDict = {
        "completion_tokens": completion,
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
    }
    if flavor.timings:  # llama.cpp reports cached tokens
        usage["prompt_tokens_details"] = {"cached_tokens": 0}
    return usage


def chat_handler(state: FakeState, flavor: OpenAIFlavor) -> Callable[[web.Request], Any]:
    """Build the ``POST /v1/chat/completions`` handler for ``flavor``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body, problem = await read_json(request)
        if problem is not None:
            return flavor.bad_request(problem)
        if not isinstance(body, dict):
            return flavor.bad_request("request body must be a JSON object")
        if "messages" not in body:
            return flavor.bad_request(flavor.missing_messages)
        messages = body["messages"]
        if not isinstance(messages, list):
            return flavor.bad_request("Expected 'messages' to be an array")
        if flavor.content_required is not None and any(
            not isinstance(m, dict) or (m.get("role") != "assistant" and "content" not in m)
            for m in messages
        ):
            return flavor.bad_request(flavor.content_required)
        requested = body.get("model")
        if not isinstance(requested, str) and flavor.require_model:
            return flavor.bad_request("you must provide a model parameter")
        model = flavor.resolve(state, requested if isinstance(requested, str) else None)
        if model is None:
            return flavor.model_not_found(requested if isinstance(requested, str) else None)
        shown = state.reported(model)
        reply = plan_reply(state, shown, Shape.OPENAI, body, flavor.tool_call_id)
        n_prompt = prompt_tokens(messages)
        base: JSONDict = {"created": int(time.time()), "model": shown}
        if flavor.system_fingerprint is not None:
            base["system_fingerprint"] = flavor.system_fingerprint
        if body.get("stream"):
            options = body.get("stream_options")
            include_usage = flavor.always_usage or (
                isinstance(options, dict) and bool(options.get("include_usage"))
            )
            return await _stream(request, state, flavor, base, reply, n_prompt, include_usage)
        message: JSONDict = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message = {
                "role": "assistant",
                "content": flavor.tool_call_content,
                "tool_calls": [_whole_call(call) for call in reply.tool_calls],
            }
        answer: JSONDict = {
            "choices": [{"finish_reason": _finish(reply), "index": 0, "message": message}],
            **base,
            "object": "chat.completion",
            "usage": _usage(flavor, n_prompt, reply.tokens),
            "id": new_id("chatcmpl-"),
        }
        if flavor.timings:
            answer["timings"] = _timings(n_prompt, reply.tokens)
        return json_response(answer)

    return handle


def _finish(reply: Reply) -> str:
    return "tool_calls" if reply.tool_calls else "stop"


def _whole_call(call: ToolCall) -> JSONDict:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json},
    }


def _call_deltas(flavor: OpenAIFlavor, index: int, call: ToolCall) -> list[JSONDict]:
    """The ``delta`` objects streaming one tool call: its opening, then its fragments."""
    function: JSONDict = {"name": call.name}
    if flavor.empty_arguments:
        function["arguments"] = ""
    opening = {"index": index, "id": call.id, "type": "function", "function": function}
    return [{"tool_calls": [opening]}] + [
        {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
        for piece in fragments(call.arguments_json)
    ]


def _tool_deltas(flavor: OpenAIFlavor, reply: Reply) -> list[JSONDict]:
    """The ``delta`` objects streaming the reply's tool calls, one after the other or, when
    the reply says so, interleaved (openings first, then a fragment of each call in turn)."""
    per_call = [_call_deltas(flavor, i, call) for i, call in enumerate(reply.tool_calls)]
    if not reply.interleaved:
        return [delta for deltas in per_call for delta in deltas]
    out = [deltas[0] for deltas in per_call]
    rest = [deltas[1:] for deltas in per_call]
    for turn in range(max((len(r) for r in rest), default=0)):
        out += [r[turn] for r in rest if turn < len(r)]
    return out


async def _stream(
    request: web.Request,
    state: FakeState,
    flavor: OpenAIFlavor,
    base: JSONDict,
    reply: Reply,
    n_prompt: int,
    include_usage: bool,
) -> web.StreamResponse:
    # Key order as llama.cpp writes chunks: created, id, model, system_fingerprint, object.
    chunk_base: JSONDict = {"created": base["created"], "id": new_id("chatcmpl-"), **base}
    chunk_base["object"] = "chat.completion.chunk"

    def chunk(delta: Mapping[str, Any], finish: str | None) -> JSONDict:
        return {
            "choices": [{"finish_reason": finish, "index": 0, "delta": dict(delta)}],
            **chunk_base,
        }

    deltas: list[JSONDict] = [{"content": piece} for piece in reply.pieces]
    deltas += _tool_deltas(flavor, reply)
    writer = StreamWriter(state, request, "sse")
    await writer.start()
    await writer.send(chunk(flavor.first_delta, None))
    for delta in deltas:
        await writer.send(chunk(delta, None), content=True)
    stop = chunk({}, _finish(reply))
    if flavor.timings and not include_usage:  # llama.cpp: timings ride on the last chunk
        stop["timings"] = _timings(n_prompt, reply.tokens)
    await writer.send(stop)
    if include_usage:
        final: JSONDict = {
            "choices": [],
            **chunk_base,
            "usage": _usage(flavor, n_prompt, reply.tokens),
        }
        if flavor.timings:
            final["timings"] = _timings(n_prompt, reply.tokens)
        await writer.send(final)
    await writer.send("[DONE]")
    return await writer.finish()


def openai_error(
    status: int, message: str, error_type: str, code: str | int | None = None
) -> web.Response:
    """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return json_response(error_body(Wire.OPENAI, status, message, error_type, code), status=status)
