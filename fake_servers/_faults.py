"""Faults that answer in place of the handler: rate limits, refused keys, quoted credentials,
one poisoned request, redirects. Bodies use the error dialect of the path (:mod:`._wire`).

``error429[:SECONDS]``
    Chat requests: 429, ``Retry-After: SECONDS`` (default 1), a rate-limit error (OpenAI
    ``type: requests, code: rate_limit_exceeded``; Anthropic ``rate_limit_error``; Ollama
    ``{"error": ...}``). Probes answer normally.
``error401``
    Every request, probes included: 401 with the message ``Incorrect API key provided:
    <credential>`` (the ``Authorization`` value; Anthropic: ``x-api-key``, else
    ``Authorization``; ``<none>`` without either). OpenAI shape with ``code: invalid_api_key`` on
    llama.cpp, LM Studio, OpenAI and Ollama ``/v1``; Anthropic ``authentication_error``; Ollama
    ``{"error": ...}``.
``echo-auth[:MODE]``
    Quotes every credential header it got (``Authorization``, ``x-api-key``, ``api-key``; full
    values, as ``upstream saw credentials: Authorization: Bearer sk-...``). MODE (default
    ``500``) picks how: ``401``, ``429``, ``500`` (that status, the dialect's error body; 429
    with ``Retry-After: 1``); ``200-error`` (HTTP 200, the dialect's error body); ``text`` (HTTP
    500, ``text/plain``); ``stream-error`` (a streamed chat sends its first content event, then
    an error event: SSE ``data: {"error": {...}}``, Anthropic ``event: error``, Ollama NDJSON
    ``{"error": "..."}``, and ends without ``[DONE]``; a non-streamed chat gets the ``500``
    answer). These modes touch chat requests only; ``probe`` instead makes every other request
    (``/health``, ``/v1/models``, ``/api/tags``, ...) a 500 quoting them, and chats are normal.
``poison``
    A chat request whose last user message contains ``POISON``: 500 (llama.cpp: ``{"error":
    {"code": 500, "message": "... chat template error ...", "type": "server_error"}}``);
    everything else is normal.
``redirect[:URL]``
    Every request: 307 with ``Location: URL`` (default: the fake's own ``/_fake/redirected``,
    which answers 200 ``{"redirected": true}`` to any method, logs the request and counts it in
    ``redirected_hits``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fake_servers._core import FakeState, KindSpec, json_response
from fake_servers._inputs import POISON, last_user_text
from fake_servers._wire import JSONDict, Wire, error_body, stream_error_event

CREDENTIAL_HEADERS: tuple[str, ...] = ("Authorization", "x-api-key", "api-key")
"""The request headers an ``echo-auth`` fake quotes."""

REDIRECT_TARGET = "/_fake/redirected"


def credentials(request: web.Request) -> str:
    """Every credential header of ``request`` as ``Name: value; ...`` (full values)."""
    found = [
        f"{name}: {request.headers[name]}" for name in CREDENTIAL_HEADERS if name in request.headers
    ]
    return "; ".join(found) if found else "no credentials"


def presented_key(wire: Wire, request: web.Request) -> str:
    """The credential a server of ``wire`` reads: ``x-api-key`` for Anthropic, else
    ``Authorization`` (the other one when that is absent); ``<none>`` when neither is sent."""
    order = (
        ("x-api-key", "Authorization") if wire is Wire.ANTHROPIC else ("Authorization", "x-api-key")
    )
    for name in order:
        if name in request.headers:
            return request.headers[name]
    return "<none>"


def unauthorized(wire: Wire, message: str) -> web.Response:
    """401 in the dialect (the OpenAI shape, ``invalid_api_key``, for llama.cpp too)."""
    if wire is Wire.LLAMACPP:
        wire = Wire.OPENAI
    return json_response(
        error_body(wire, 401, message, "invalid_request_error", "invalid_api_key"), status=401
    )


def rate_limited(wire: Wire, message: str, retry_after: int) -> web.Response:
    """429 in the dialect, with ``Retry-After``."""
    kinds: dict[Wire, tuple[str, str | None]] = {
        Wire.OPENAI: ("requests", "rate_limit_exceeded"),
        Wire.LLAMACPP: ("rate_limit_error", None),
    }
    error_type, code = kinds.get(wire, ("", None))
    return json_response(
        error_body(wire, 429, message, error_type, code),
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


def server_error(wire: Wire, message: str, status: int = 500) -> web.Response:
    """A 500 error (or ``status`` with the same body, e.g. 200) in the dialect."""
    return json_response(error_body(wire, 500, message, "server_error"), status=status)


def _echo(
    mode: str, wire: Wire, request: web.Request, is_chat: bool, streaming: bool
) -> web.StreamResponse | None:
    message = f"upstream saw credentials: {credentials(request)}"
    if mode == "probe":
        return None if is_chat else server_error(wire, message)
    if not is_chat:
        return None
    if mode == "401":
        return unauthorized(wire, message)
    if mode == "429":
        return rate_limited(wire, message, 1)
    if mode == "200-error":
        return server_error(wire, message, status=200)
    if mode == "text":
        return web.Response(status=500, text=message, content_type="text/plain")
    if mode == "stream-error" and streaming:
        return None  # the handler streams; see stream_error()
    return server_error(wire, message)


def answer_fault(
    spec: KindSpec, state: FakeState, request: web.Request, body: Any, streaming: bool
) -> web.StreamResponse | None:
    """The answer the current fault gives ``request`` instead of its handler (None: no
    answer, let the handler run)."""
    fault = state.fault
    wire = spec.wire_at(request.path)
    is_chat = request.path in spec.chat_paths
    if fault.name == "redirect":
        location = fault.location or state.url + REDIRECT_TARGET
        return web.Response(status=307, headers={"Location": location})
    if fault.name == "error401":
        return unauthorized(wire, f"Incorrect API key provided: {presented_key(wire, request)}")
    if fault.name == "error429" and is_chat:
        seconds = fault.retry_after
        message = f"Rate limit reached for requests. Please try again in {seconds}s."
        return rate_limited(wire, message, seconds)
    if fault.name == "echo-auth":
        return _echo(fault.mode, wire, request, is_chat, streaming)
    if fault.name == "poison" and is_chat and POISON in last_user_text(body):
        return server_error(
            wire, "Failed to apply the chat template: chat template error (poisoned request)"
        )
    return None


def stream_error(
    spec: KindSpec, state: FakeState, request: web.Request, streaming: bool
) -> tuple[JSONDict, str | None] | None:
    """The error event to end the stream answering ``request`` with (``echo-auth:stream-error``)."""
    fault = state.fault
    if not streaming or fault.name != "echo-auth" or fault.mode != "stream-error":
        return None
    message = f"upstream saw credentials: {credentials(request)}"
    return stream_error_event(spec.wire_at(request.path), message)
