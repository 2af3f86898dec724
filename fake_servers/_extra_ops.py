"""The fakes' endpoints besides chat: embeddings, text completions, llama.cpp's Messages API.

Each follows a capture of the real server in ``shared/wire/llamacpp`` (``embeddings*.txt``,
``completions*.txt``, ``messages*.txt``) or the provider's documented format:

- **Embeddings** (OpenAI ``/v1/embeddings``): one vector of :data:`DIMENSIONS` floats per
  input, the same text always the same vector (derived from its SHA-256), so a test can
  tell which input got which vector. ``encoding_format: "base64"`` packs them as
  little-endian float32, as OpenAI does. A llama.cpp fake serves them only when started
  with ``embeddings=True`` (``--embeddings``), else answers 501 ``not_supported_error``
  exactly as captured; like the real server, it goes on answering chat, completions and
  messages either way, and names the model the request named in an embeddings reply.
- **Ollama** ``/api/embed`` (``embeddings: [[...]]``) and the legacy ``/api/embeddings``
  (``embedding: [...]``), from the same vectors.
- **Text completions** (``/v1/completions``): the self-naming text of
  :func:`fake_servers._inputs.plan_reply` (the ``prompt`` read as the user's text) as
  ``text_completion`` objects, streamed word by word; llama.cpp adds ``timings`` and puts
  ``usage`` on its last chunk whatever the request asked.
- **Messages on llama.cpp** (``/v1/messages``, ``/v1/messages/count_tokens``): as the
  Anthropic fake, with llama.cpp's differences seen in the captures: ids ``chatcmpl-…``, the
  loaded model answering any name, ``cache_read_input_tokens`` in ``usage``, no ``ping``.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from collections.abc import Callable
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
from fake_servers._inputs import Shape, last_user_text, plan_reply
from fake_servers._openai_chat import _timings
from fake_servers.anthropic import _blocks, _content, _stop_reason, _system_tokens

__all__ = [
    "DIMENSIONS",
    "completions_handler",
    "count_tokens_handler",
    "embeddings_handler",
    "llamacpp_messages_handler",
    "ollama_embed_handler",
    "vector",
]

DIMENSIONS = 8
"""Floats per embedding vector."""

ErrorFactory = Callable[[int, str, str], web.Response]
Resolve = Callable[[FakeState, str | None], str | None]

EMBEDDINGS_NOT_ENABLED = "This server does not support embeddings. Start it with `--embeddings`"


def vector(text: str) -> list[float]:
    """The fake embedding of ``text``: :data:`DIMENSIONS` floats in [-1, 1)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 128 - 1, 6) for b in digest[:DIMENSIONS]]


def _encode(values: list[float], encoding: Any) -> list[float] | str:
    if encoding != "base64":
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _texts(given: Any) -> list[str] | None:
    if isinstance(given, str):
        return [given]
    if isinstance(given, list) and given and all(isinstance(t, str) for t in given):
        return list(given)
    if isinstance(given, list) and given and all(isinstance(t, int) for t in given):
        return [" ".join(map(str, given))]  # token ids: one input
    return None


def embeddings_handler(
    state: FakeState, error: ErrorFactory, resolve: Resolve, *, llamacpp: bool = False
) -> Callable[[web.Request], Any]:
    """``POST /v1/embeddings`` in OpenAI's shape (llama.cpp's key order when ``llamacpp``)."""

    async def handle(request: web.Request) -> web.Response:
        if llamacpp and not state.embeddings:
            return error(501, EMBEDDINGS_NOT_ENABLED, "not_supported_error")
        body, problem = await read_json(request)
        if problem is not None or not isinstance(body, dict):
            return error(
                400, problem or "request body must be a JSON object", "invalid_request_error"
            )
        texts = _texts(body.get("input"))
        if texts is None:
            return error(
                400, '"input" must be a string or an array of strings', "invalid_request_error"
            )
        requested = body.get("model")
        model = resolve(state, requested if isinstance(requested, str) else None)
        if model is None:
            return error(404, f"The model `{requested}` does not exist", "invalid_request_error")
        tokens = sum(len(t.split()) for t in texts)
        encoding = body.get("encoding_format")
        data: list[JSONDict] = [
            {"embedding": _encode(vector(t), encoding), "index": i, "object": "embedding"}
            for i, t in enumerate(texts)
        ]
        if llamacpp and encoding == "base64":  # llama.cpp says so in every item
            data = [{**item, "encoding_format": "base64"} for item in data]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        shown = state.reported(model)
        if llamacpp:  # key order as captured; the model named as the request named it
            named = requested if isinstance(requested, str) else shown
            return json_response({"model": named, "object": "list", "usage": usage, "data": data})
        return json_response({"object": "list", "data": data, "model": shown, "usage": usage})

    return handle


def completions_handler(
    state: FakeState, error: ErrorFactory, resolve: Resolve, *, llamacpp: bool = False
) -> Callable[[web.Request], Any]:
    """``POST /v1/completions``: ``text_completion`` objects, streamed as SSE when asked."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body, problem = await read_json(request)
        if problem is not None or not isinstance(body, dict):
            return error(
                400, problem or "request body must be a JSON object", "invalid_request_error"
            )
        if not isinstance(body.get("prompt"), str | list):
            return error(400, '"prompt" must be a string or an array', "invalid_request_error")
        requested = body.get("model")
        model = resolve(state, requested if isinstance(requested, str) else None)
        if model is None:
            return error(404, f"The model `{requested}` does not exist", "invalid_request_error")
        shown = state.reported(model)
        reply = plan_reply(
            state, shown, Shape.OPENAI, {"prompt": _prompt(body), "stop": body.get("stop")}, str
        )
        n_prompt = len(last_user_text({"prompt": _prompt(body)}).split()) + 1
        usage: JSONDict = {
            "completion_tokens": reply.tokens,
            "prompt_tokens": n_prompt,
            "total_tokens": n_prompt + reply.tokens,
        }
        if llamacpp:
            usage["prompt_tokens_details"] = {"cached_tokens": 0}
        base: JSONDict = {"created": int(time.time()), "model": shown}
        if llamacpp:
            base["system_fingerprint"] = "b0-fake"
        base["object"] = "text_completion"
        finish = "stop"
        timings = {"timings": _timings(n_prompt, reply.tokens)} if llamacpp else {}
        if not body.get("stream"):
            choice = {"text": reply.text, "index": 0, "logprobs": None, "finish_reason": finish}
            return json_response(
                {
                    "choices": [choice],
                    **base,
                    "usage": usage,
                    "id": new_id("chatcmpl-" if llamacpp else "cmpl-"),
                    **timings,
                }
            )
        writer = StreamWriter(state, request, "sse")
        await writer.start()
        chunk_id = new_id("chatcmpl-" if llamacpp else "cmpl-")
        for piece in reply.pieces:
            choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": None}
            await writer.send({"choices": [choice], **base, "id": chunk_id}, content=True)
        last: JSONDict = {
            "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": finish}],
            **base,
        }
        options = body.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        if llamacpp:
            last["usage"] = usage  # llama.cpp: on the last chunk, asked or not
        last["id"] = chunk_id
        await writer.send({**last, **timings})
        if wants_usage and not llamacpp:
            await writer.send({"choices": [], **base, "id": chunk_id, "usage": usage})
        await writer.send("[DONE]")
        return await writer.finish()

    return handle


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        return " ".join(str(p) for p in prompt)
    return prompt if isinstance(prompt, str) else ""


def llamacpp_messages_handler(
    state: FakeState, error: ErrorFactory
) -> Callable[[web.Request], Any]:
    """llama.cpp's ``POST /v1/messages``: Anthropic's format, llama.cpp's details."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body, problem = await read_json(request)
        if problem is not None or not isinstance(body, dict):
            return error(
                400, problem or "request body must be a JSON object", "invalid_request_error"
            )
        if not isinstance(body.get("messages"), list):
            return error(400, "'messages' is required", "invalid_request_error")
        requested = body.get("model")
        model = requested if requested in state.models else state.models[0]
        shown = state.reported(str(model))
        reply = plan_reply(state, shown, Shape.ANTHROPIC, body, lambda: new_id("", 32))
        n_in = prompt_tokens(body["messages"]) + _system_tokens(body.get("system"))
        message: JSONDict = {
            "id": new_id("chatcmpl-"),
            "type": "message",
            "role": "assistant",
            "content": _content(reply),
            "model": shown,
            "stop_reason": _stop_reason(reply),
            "stop_sequence": reply.stop_sequence,
            "usage": {
                "cache_read_input_tokens": 0,
                "input_tokens": n_in,
                "output_tokens": reply.tokens,
            },
        }
        if not body.get("stream"):
            return json_response(message)
        writer = StreamWriter(state, request, "sse")
        await writer.start()

        async def send(event: str, data: JSONDict, content: bool = False) -> None:
            await writer.send({"type": event, **data}, event=event, content=content)

        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**message["usage"], "output_tokens": 0},
        }
        await send("message_start", {"message": start})
        for index, (block, deltas) in enumerate(_blocks(reply)):
            await send("content_block_start", {"index": index, "content_block": block})
            for delta in deltas:
                await send("content_block_delta", {"index": index, "delta": delta}, content=True)
            await send("content_block_stop", {"index": index})
        await send(
            "message_delta",
            {
                "delta": {
                    "stop_reason": message["stop_reason"],
                    "stop_sequence": reply.stop_sequence,
                },
                "usage": {"output_tokens": reply.tokens},
            },
        )
        await send("message_stop", {})
        return await writer.finish()

    return handle


def count_tokens_handler(state: FakeState, error: ErrorFactory) -> Callable[[web.Request], Any]:
    """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``."""

    async def handle(request: web.Request) -> web.Response:
        body, problem = await read_json(request)
        if (
            problem is not None
            or not isinstance(body, dict)
            or not isinstance(body.get("messages"), list)
        ):
            return error(400, problem or "messages: Field required", "invalid_request_error")
        n_in = prompt_tokens(body["messages"]) + _system_tokens(body.get("system"))
        return json_response({"input_tokens": n_in})

    return handle


def ollama_embed_handler(
    state: FakeState, error: ErrorFactory, resolve: Resolve, *, legacy: bool = False
) -> Callable[[web.Request], Any]:
    """Ollama's ``POST /api/embed`` (``legacy``: ``/api/embeddings`` with ``prompt``)."""

    async def handle(request: web.Request) -> web.Response:
        body, problem = await read_json(request)
        if problem is not None or not isinstance(body, dict):
            return error(400, problem or "request body must be a JSON object", "")
        requested = body.get("model")
        if not isinstance(requested, str) or not requested:
            return error(400, "model is required", "")
        model = resolve(state, requested)
        if model is None:
            return error(404, f"model '{requested}' not found", "")
        if legacy:
            prompt = body.get("prompt")
            return json_response({"embedding": vector(prompt if isinstance(prompt, str) else "")})
        texts = _texts(body.get("input"))
        if texts is None:
            return error(400, "invalid input type", "")
        return json_response(
            {
                "model": state.reported(model),
                "embeddings": [vector(t) for t in texts],
                "total_duration": 1_000_000,
                "load_duration": 100_000,
                "prompt_eval_count": sum(len(t.split()) for t in texts),
            }
        )

    return handle
