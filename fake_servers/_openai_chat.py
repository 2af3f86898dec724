"""OpenAI-style ``/v1/chat/completions``, shared by llama.cpp, LM Studio, OpenAI and Ollama."""

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
    split_reply,
)


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
        pieces = split_reply(state.reply_text(shown))
        n_prompt = prompt_tokens(messages)
        base: JSONDict = {"created": int(time.time()), "model": shown}
        if flavor.system_fingerprint is not None:
            base["system_fingerprint"] = flavor.system_fingerprint
        if body.get("stream"):
            options = body.get("stream_options")
            include_usage = flavor.always_usage or (
                isinstance(options, dict) and bool(options.get("include_usage"))
            )
            return await _stream(request, state, flavor, base, pieces, n_prompt, include_usage)
        reply: JSONDict = {
            "choices": [
                {
                    "finish_reason": "stop",
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces)},
                }
            ],
            **base,
            "object": "chat.completion",
            "usage": _usage(flavor, n_prompt, len(pieces)),
            "id": new_id("chatcmpl-"),
        }
        if flavor.timings:
            reply["timings"] = _timings(n_prompt, len(pieces))
        return json_response(reply)

    return handle


async def _stream(
    request: web.Request,
    state: FakeState,
    flavor: OpenAIFlavor,
    base: JSONDict,
    pieces: list[str],
    n_prompt: int,
    include_usage: bool,
) -> web.StreamResponse:
    chunk_base: JSONDict = {**base, "id": new_id("chatcmpl-"), "object": "chat.completion.chunk"}
    # llama.cpp puts "created" before "id"; key order is kept from ``base`` then the rest.

    def chunk(delta: Mapping[str, Any], finish: str | None) -> JSONDict:
        return {
            "choices": [{"finish_reason": finish, "index": 0, "delta": dict(delta)}],
            **chunk_base,
        }

    writer = StreamWriter(state, request, "sse")
    await writer.start()
    await writer.send(chunk(flavor.first_delta, None))
    for piece in pieces:
        await writer.send(chunk({"content": piece}, None))
    stop = chunk({}, "stop")
    if flavor.timings and not include_usage:  # llama.cpp: timings ride on the last chunk
        stop["timings"] = _timings(n_prompt, len(pieces))
    await writer.send(stop)
    if include_usage:
        final: JSONDict = {
            "choices": [],
            **chunk_base,
            "usage": _usage(flavor, n_prompt, len(pieces)),
        }
        if flavor.timings:
            final["timings"] = _timings(n_prompt, len(pieces))
        await writer.send(final)
    await writer.send("[DONE]")
    return await writer.finish()


def openai_error(
    status: int, message: str, error_type: str, code: str | int | None = None
) -> web.Response:
    """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return json_response(
        {"error": {"message": message, "type": error_type, "param": None, "code": code}},
        status=status,
    )
