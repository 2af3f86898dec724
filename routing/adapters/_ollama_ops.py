"""Ollama's native API for the operations besides chat: embeddings and text completions.

OpenAI-shaped requests in, OpenAI-shaped replies out (the gateway's OpenAI door passes them
through unchanged to OpenAI-style servers; an Ollama server needs these conversions):

===============================  ============================================================
OpenAI                           Ollama
===============================  ============================================================
embeddings ``input`` (string     ``/api/embed`` ``input``; token-id arrays have no Ollama form:
or strings)                      a 400 naming ``input``
``dimensions``                   ``dimensions``
``encoding_format: base64``      the floats packed as little-endian float32, base64 (what the
                                 ``openai`` client asks for by default)
reply ``data[i].embedding``      ``embeddings[i]``; ``usage.prompt_tokens`` = prompt_eval_count
completions ``prompt``           ``/api/generate`` ``prompt`` with ``raw: true`` (no template:
                                 a text completion continues the text as given); with a
                                 ``suffix``, ``raw`` is off so the model's infill template
                                 places prompt and suffix
``max_tokens``, ``temperature``, ``options``: ``num_predict``, ``temperature``, ``top_p``,
``top_p``, ``stop``, ``seed``,   ``stop``, ``seed``, ``presence_penalty``,
penalties                        ``frequency_penalty``
``n`` > 1, ``best_of`` > 1,      no Ollama equivalent: a 400 naming the field
``echo``, ``logprobs``,
``logit_bias``, several
prompts, token-id prompts
``user``                         not sent (an end-user id for OpenAI's abuse monitoring;
                                 the gateway's sticky strategy reads it)
other fields                     passed through untouched
reply ``choices[0].text``        ``response``; ``finish_reason`` from ``done_reason``
===============================  ============================================================

What an Ollama client sent the Ollama door that OpenAI has no field for (``options``,
``keep_alive``, ``truncate``, ``think``, ``format``, ``images``, ``context``) rides along in
the private :data:`~routing._request_specs.OLLAMA_PRIVATE` key and is forwarded here as is.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp

from routing._request_specs import OLLAMA_PRIVATE
from routing.adapters._http import iter_ndjson, post, post_read, read_object, wants_usage
from routing.errors import BackendProtocolError, InvalidRequest, Reason

__all__ = [
    "completion_from_wire",
    "completion_to_wire",
    "embed_from_wire",
    "embed_to_wire",
    "send_completion",
    "send_embedding",
    "stream_completion",
]

#: OpenAI completions field -> Ollama ``options`` key.
_OPTIONS = {
    "max_tokens": "num_predict",
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "top_k": "top_k",
}
_FINISH = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}


def _unmappable(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"'{param}' cannot be served by an Ollama backend: {why}",
        param=param,
        code="unsupported_parameter",
    )


def _private(request: Mapping[str, Any]) -> dict[str, Any]:
    private = request.get(OLLAMA_PRIVATE)
    return dict(private) if isinstance(private, Mapping) else {}


def embed_to_wire(model: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """The ``/api/embed`` body for an OpenAI embeddings request."""
    given = request.get("input")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise _unmappable("input", "Ollama embeds text only, not token ids")
    body: dict[str, Any] = {"model": model, "input": texts}
    if request.get("dimensions") is not None:
        body["dimensions"] = request["dimensions"]
    for name, value in _private(request).items():
        body.setdefault(name, value)
    for name, value in request.items():
        if name not in _EMBEDDING_FIELDS and value is not None:
            body.setdefault(name, value)  # unknown to us: passed through untouched
    return body


def _encode(vector: list[float], encoding: Any) -> list[float] | str:
    if encoding != "base64":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def embed_from_wire(
    reply: Mapping[str, Any], key: str, request: Mapping[str, Any]
) -> dict[str, Any]:
    """An ``/api/embed`` reply as OpenAI's embeddings list."""
    vectors = reply.get("embeddings")
    if not isinstance(vectors, list) or not all(
        isinstance(v, list)
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
        for v in vectors
    ):
        raise BackendProtocolError(
            "reply has no embeddings[] of numbers", instance=key, body=dict(reply)
        )
    encoding = request.get("encoding_format")
    tokens = int(reply.get("prompt_eval_count") or 0)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(v, encoding)}
            for i, v in enumerate(vectors)
        ],
        "model": reply.get("model", ""),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def completion_to_wire(model: str, request: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
    """The ``/api/generate`` body for an OpenAI text-completions request."""
    prompt = request.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _unmappable("prompt", "one prompt string is needed (not several, not token ids)")
    for name, limit in (("n", 1), ("best_of", 1)):
        value = request.get(name)
        if value is not None and value != limit:
            raise _unmappable(name, "Ollama generates one answer per request")
    if request.get("echo"):
        raise _unmappable("echo", "Ollama does not repeat the prompt")
    if request.get("logprobs") not in (None, 0, False):
        raise _unmappable("logprobs", "Ollama's generate API reports no log probabilities")
    if request.get("logit_bias"):
        raise _unmappable("logit_bias", "Ollama takes no token biases")
    body: dict[str, Any] = {"model": model, "prompt": prompt, "stream": stream}
    suffix = request.get("suffix")
    if suffix:
        body["suffix"] = suffix  # the model's infill template puts it in place
    else:
        body["raw"] = True
    options = {
        target: request[name] for name, target in _OPTIONS.items() if request.get(name) is not None
    }
    stop = request.get("stop")
    if stop is not None:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    private = _private(request)
    if isinstance(private.get("options"), Mapping):
        options = {**private.pop("options"), **options}
    if options:
        body["options"] = options
    for name, value in private.items():
        body[name] = value  # raw, system, template, images, format, keep_alive …
    for name, value in request.items():
        if name not in _COMPLETION_FIELDS and value is not None:
            body.setdefault(name, value)  # unknown to us: passed through untouched
    return body


_COMPLETION_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "suffix",
        "stream",
        "stream_options",
        "stop",
        "n",
        "best_of",
        "echo",
        "logprobs",
        "logit_bias",
        "user",
        OLLAMA_PRIVATE,
        *_OPTIONS,
    }
)
_EMBEDDING_FIELDS = frozenset(
    {"model", "input", "encoding_format", "dimensions", "user", OLLAMA_PRIVATE}
)


def _usage(reply: Mapping[str, Any]) -> dict[str, int]:
    prompt = int(reply.get("prompt_eval_count") or 0)
    completion = int(reply.get("eval_count") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion_from_wire(reply: Mapping[str, Any], key: str) -> dict[str, Any]:
    """An ``/api/generate`` reply (``stream: false``) as an OpenAI ``text_completion``."""
    text = reply.get("response")
    if not isinstance(text, str):
        if "error" in reply:
            raise BackendProtocolError(
                f"error in a 200 reply: {reply['error']}",
                instance=key,
                body=dict(reply),
                reason=Reason.SERVER_ERROR,
            )
        raise BackendProtocolError("reply has no response text", instance=key, body=dict(reply))
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": reply.get("model", ""),
        "choices": [
            {
                "text": text,
                "index": 0,
                "logprobs": None,
                "finish_reason": _FINISH.get(str(reply.get("done_reason")), "stop"),
            }
        ],
        "usage": _usage(reply),
    }


async def send_embedding(
    session: aiohttp.ClientSession,
    url: str,
    model: str,
    request: Mapping[str, Any],
    *,
    key: str,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
) -> dict[str, Any]:
    """POST ``/api/embed``; the OpenAI-shaped embeddings list."""
    raw = await post_read(
        session,
        url + "/api/embed",
        embed_to_wire(model, request),
        key=key,
        headers=headers,
        timeout=timeout,
    )
    return embed_from_wire(read_object(raw, key), key, request)


async def send_completion(
    session: aiohttp.ClientSession,
    url: str,
    model: str,
    request: Mapping[str, Any],
    *,
    key: str,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
) -> dict[str, Any]:
    """POST ``/api/generate`` (``stream: false``); the OpenAI ``text_completion``."""
    raw = await post_read(
        session,
        url + "/api/generate",
        completion_to_wire(model, request, stream=False),
        key=key,
        headers=headers,
        timeout=timeout,
    )
    return completion_from_wire(read_object(raw, key), key)


async def stream_completion(
    session: aiohttp.ClientSession,
    url: str,
    model: str,
    request: Mapping[str, Any],
    *,
    key: str,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
) -> AsyncGenerator[dict[str, Any], None]:
    """POST ``/api/generate`` streaming; yield OpenAI ``text_completion`` chunks (a usage
    chunk last only when ``stream_options.include_usage`` asks for one)."""
    base = {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
    }
    body = completion_to_wire(model, request, stream=True)
    done = False
    async with post(
        session, url + "/api/generate", body, key=key, headers=headers, timeout=timeout
    ) as resp:
        async for line in iter_ndjson(resp, key):
            if "error" in line:
                raise BackendProtocolError(
                    f"error inside the stream: {line['error']}",
                    instance=key,
                    body=line,
                    reason=Reason.SERVER_ERROR,
                )
            text = line.get("response")
            finish = _FINISH.get(str(line.get("done_reason")), "stop") if line.get("done") else None
            chunk = {
                **base,
                "model": line.get("model", model),
                "choices": [
                    {
                        "text": text if isinstance(text, str) else "",
                        "index": 0,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
            }
            yield chunk
            if line.get("done"):
                done = True
                if wants_usage(request):
                    yield {**base, "model": chunk["model"], "choices": [], "usage": _usage(line)}
                break
    if not done:
        raise BackendProtocolError(
            "stream ended before it was complete (no done line)", instance=key
        )
