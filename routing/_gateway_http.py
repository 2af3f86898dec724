"""What both gateway doors share: request state keys, body reading, errors as responses.

The OpenAI door answers errors as ``{"error": {"message", "type", "code"}}``; the Ollama
door (paths under ``/api/``) as Ollama does, ``{"error": "message"}``; the Anthropic door
(``/v1/messages``, and ``/v1/models`` asked by an Anthropic client) as Anthropic does,
``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from routing._auth import ClientKey
from routing._content_encoding import DECODED, BodyDecodeError, BodyDecoder
from routing._decision import Decision
from routing._reload import RouterPool
from routing._request_body import parse_json_object
from routing.adapters._http import WireBody
from routing.errors import (
    BackendError,
    BackendRejected,
    InvalidRequest,
    NoRouteError,
    Reason,
    RoutingError,
)

__all__ = [
    "POOL",
    "ROUTE",
    "RequestError",
    "RouteInfo",
    "anthropic_door",
    "dumps",
    "error_response",
    "provider_header",
    "public_row",
    "read_json_object",
    "route_info",
    "routing_error_response",
    "routing_headers",
    "session_header",
    "stream_response",
]


@dataclass(slots=True)
class RouteInfo:
    """What the access log and the ``X-Routed-To`` header say about one request."""

    instance: str | None = None
    model: str | None = None
    reason: str | None = None
    failovers: int = 0
    #: The client key the request came with (``gateway.auth``), None without auth.
    client: ClientKey | None = None
    #: The decision of the instance that answered (the dashboard shows its trace).
    decision: Decision | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def decided(self, decision: Decision, failovers: int) -> None:
        """Record the decision of the instance that answered."""
        self.instance, self.model = decision.instance, decision.model
        self.reason, self.failovers = decision.reason, failovers
        self.decision = decision

    def count_usage(self, usage: object) -> None:
        """Add the token counts of an OpenAI ``usage`` object (anything else adds nothing)."""
        if isinstance(usage, dict):
            self.prompt_tokens += _tokens(usage.get("prompt_tokens"))
            self.completion_tokens += _tokens(usage.get("completion_tokens"))


def _tokens(value: object) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53
    return value if ok else 0  # type: ignore[return-value]


# aiohttp >= 3.13 wants typed request keys (a str key warns); older ones only take str.
ROUTE: Any = (
    web.RequestKey("routing.route", RouteInfo) if hasattr(web, "RequestKey") else "routing.route"
)


def route_info(request: web.Request) -> RouteInfo:
    """The request's :class:`RouteInfo` (created on first use)."""
    info: RouteInfo | None = request.get(ROUTE)
    if info is None:
        info = request[ROUTE] = RouteInfo()
    return info


def routing_headers(info: RouteInfo) -> dict[str, str]:
    """``X-Routed-To`` and ``X-Routing-Reason`` (ASCII, one line, 500 characters at most) of
    the request's decision; none before one was made."""
    headers = {}
    if info.instance:
        headers["X-Routed-To"] = info.instance
    reason = info.reason
    if reason:
        safe = reason.encode("ascii", "backslashreplace").decode().replace("\n", " ")
        headers["X-Routing-Reason"] = safe[:500]
    return headers


async def stream_response(request: web.Request, content_type: str) -> web.StreamResponse:
    """A streamed answer to ``request``, its head (routing headers included) sent now."""
    headers = {"Content-Type": content_type, **routing_headers(route_info(request))}
    if content_type == "text/event-stream":
        headers["Cache-Control"] = "no-cache"
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    return response


#: The app key holding the :class:`~routing._reload.RouterPool` both doors serve from.
POOL = web.AppKey("routing.pool", RouterPool)


class RequestError(Exception):
    """The client's request is unacceptable: answered with ``status`` and ``message``.

    ``param`` is the offending field's path (``messages[2].content``, ``temperature``) when
    one field is at fault: ``error.param`` in the OpenAI shape (the message names it too).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        type_: str = "invalid_request_error",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.type = type_
        self.param = param

    @classmethod
    def invalid(cls, exc: InvalidRequest) -> RequestError:
        """The 400 answering an :class:`InvalidRequest`."""
        return cls(400, str(exc), code=exc.code, param=exc.param or None)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (non-ASCII kept as UTF-8)."""
    return _ENCODER.encode(value).encode()


async def read_json_object(
    request: web.Request, limit: int, timeout: float | None = None, *, wire: bool = False
) -> dict[str, Any]:
    """The body as a JSON object, or :class:`RequestError`; every body ends in an answer.

    408 when the body has not arrived within ``timeout`` seconds (``gateway.read_timeout``);
    413 beyond ``limit`` bytes, announced or read, as sent and after decoding (a gzip bomb
    is inflated no further than the limit); 415 for a ``Content-Encoding`` not in
    :data:`~routing._content_encoding.DECODED`; 400 for data that is not of its
    ``Content-Encoding`` or ends before it does, a body cut short or with broken chunking,
    and everything :func:`parse_json_object` refuses.  The gateway's server leaves bodies
    compressed (``auto_decompress=False``): they are decoded here, chunk by chunk
    (:mod:`routing._content_encoding`).  ``wire``: return a
    :class:`~routing.adapters._http.WireBody` (the decoded bytes kept, for an adapter to
    forward as they are).
    """
    encoding = request.headers.get("Content-Encoding")
    decoder = None if encoding is None else _decoder(request)
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    content = request.content
    data: bytes | bytearray
    try:
        if decoder is None and content.is_eof():  # the whole body came with the head:
            data = content.read_nowait(-1)  # no wait, so no timer
            if len(data) > limit:
                raise _too_large(limit)
        else:
            data = bytearray()
            async with asyncio.timeout(timeout):
                if decoder is None:
                    while chunk := await content.readany():
                        data += chunk
                        if len(data) > limit:
                            raise _too_large(limit)
                else:
                    await _read_decoded(request, decoder, data, limit)
    except TimeoutError:
        raise RequestError(
            408,
            f"request body not received within {timeout:g}s (gateway.read_timeout)",
            code="request_timeout",
        ) from None
    except web.RequestPayloadError as exc:
        message = f"request body could not be read: {str(exc).splitlines()[-1].strip()}"
        raise RequestError(400, message, code="invalid_body") from None
    except BodyDecodeError as exc:
        raise RequestError(400, str(exc), code="invalid_body") from None
    data = data if isinstance(data, bytes) else bytes(data)
    try:
        body = parse_json_object(data)
    except InvalidRequest as exc:
        raise RequestError.invalid(exc) from None
    if wire:
        body = WireBody(body, data)
    client = route_info(request).client
    if client is not None and not client.allows(body.get("model")):
        raise _not_allowed(client, body.get("model"))
    return body


def _decoder(request: web.Request) -> BodyDecoder | None:
    """The decoder of the request's ``Content-Encoding`` (None: identity), or its 415."""
    # Repeated headers are one list of codings (RFC 9110 5.3): ``gzip`` twice is refused.
    value = ", ".join(request.headers.getall("Content-Encoding")).strip()
    encoding = value.lower()
    if encoding not in DECODED:
        raise RequestError(
            415,
            f"Content-Encoding {value[:40]!r} is not "
            f"supported; send {', '.join(sorted(DECODED - {''}))}",
            code="unsupported_content_encoding",
        )
    return BodyDecoder(encoding) if encoding in ("gzip", "deflate") else None


async def _read_decoded(
    request: web.Request, decoder: BodyDecoder, data: bytearray, limit: int
) -> None:
    """Decode the body into ``data`` as it arrives: no more than ``limit`` bytes either side."""
    received = 0
    while chunk := await request.content.readany():
        received += len(chunk)
        # One byte more than fits is enough to know the body does not.
        data += decoder.feed(chunk, limit - len(data) + 1)
        if len(data) > limit or received > limit:
            raise _too_large(limit)
    decoder.end()


def _not_allowed(client: ClientKey, model: object) -> RequestError:
    """403 ``model_not_allowed``: the key's ``models`` globs do not cover ``model``."""
    allowed = ", ".join(client.models)
    named = f"model {model!r}" if isinstance(model, str) else "a request naming no model"
    return RequestError(
        403,
        f"key {client.name!r} may not use {named}; it may use models matching {allowed}",
        code="model_not_allowed",
        type_="permission_error",
        param="model",
    )


def _too_large(limit: int) -> RequestError:
    return RequestError(413, f"request body is larger than {limit} bytes", code="request_too_large")


def provider_header(request: web.Request) -> str | None:
    """``X-Routing-Provider`` (``P`` or ``P:instance``), or None when absent or empty.

    Only ever used as a key into the configured providers: it never reaches a URL.
    """
    value = request.headers.get("X-Routing-Provider", "").strip()
    return value or None


def public_row(row: dict[str, Any]) -> dict[str, Any]:
    """A status row without anything secret: URLs lose user info and query strings."""
    url = str(row.get("url", ""))
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    host = host.rpartition("@")[2]
    row["url"] = scheme + sep + host + slash + path.partition("?")[0]
    return row


def session_header(request: web.Request) -> str | None:
    """``X-Session-ID`` (the sticky strategy's session key), or None when absent or empty."""
    value = request.headers.get("X-Session-ID", "").strip()
    return value[:256] or None


def _ollama_door(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def anthropic_door(request: web.Request) -> bool:
    """True for the Anthropic door: ``/v1/messages...``, and ``/v1/models...`` asked with an
    ``anthropic-version`` header (Anthropic's SDKs always send one, OpenAI clients never)."""
    path = request.path
    if path.startswith("/v1/messages"):
        return True
    return path.startswith("/v1/models") and "anthropic-version" in request.headers


# Anthropic's error types are named by status (its clients and docs read them so).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _door_shaped(request: web.Request, body: dict[str, Any]) -> bool:
    """True when a backend's error ``body`` already has the shape of the request's door."""
    if _ollama_door(request):
        return False
    return (body.get("type") == "error") == anthropic_door(request)


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def error_response(
    request: web.Request,
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    extra: dict[str, Any] | None = None,
    param: str | None = None,
) -> web.Response:
    """An error in the shape of the door the request came through (URL passwords removed).

    ``param`` (the offending field's path) is ``error.param`` in the OpenAI shape; the
    Ollama shape has only a message, which names the field itself.
    """
    message = _USERINFO.sub("", message)
    if _ollama_door(request):
        payload: dict[str, Any] = {"error": message}
    elif anthropic_door(request):
        kind = _ANTHROPIC_TYPES.get(status, type_)
        payload = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        payload = {
            "error": {
                "message": message,
                "type": type_,
                "param": param,
                "code": code,
                **(extra or {}),
            }
        }
    response = web.Response(body=dumps(payload), status=status, content_type="application/json")
    if status in (408, 413) or code == "invalid_body" or request.content.exception() is not None:
        # Do not read (or wait for) the rest of a huge, broken or undecodable body.
        response.force_close()
    return response


def _rejected_body(exc: BackendRejected) -> tuple[str, dict[str, Any] | None]:
    """The backend's own error message, and its OpenAI-shaped error object if it had one."""
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"], body
        if isinstance(err, str):
            return err, None
        if isinstance(body.get("message"), str):
            return str(body["message"]), None
    if isinstance(body, str) and body.strip():
        return body.strip(), None
    return exc.detail, None


def routing_error_response(request: web.Request, exc: RoutingError) -> web.Response:
    """Map the :mod:`routing.errors` tree to an HTTP answer, deciding on ``reason``.

    ========================  ======  ============================================
    error                     status  body
    ========================  ======  ============================================
    NoRouteError              404     model_not_found, with the candidates
    NoRouteError, unsupported 501     not_supported (served, but none can do the operation)
    NoRouteError, down        503     no_ready_instance (the model's servers are down)
    rejected                  4xx     the backend's own error (credentials redacted)
    overloaded                429     ``Retry-After`` from the backend (default 1 s)
    unauthorized              502     names the instance, never the upstream body
    timeout                   504
    refused, loading          503
    not_supported             501
    server_error, protocol    502
    ========================  ======  ============================================
    """
    if isinstance(exc, NoRouteError):
        extra = {"candidates": [c.as_dict() for c in exc.candidates if hasattr(c, "as_dict")]}
        if exc.provider is not None and len(exc.candidates) == 1:
            route_info(request).instance = exc.candidates[0].instance
        if exc.unsupported:
            return error_response(
                request,
                501,
                str(exc),
                type_="not_supported_error",
                code="not_supported",
                extra=extra,
            )
        if exc.unavailable and exc.candidates:
            return error_response(
                request,
                503,
                str(exc),
                type_="service_unavailable",
                code="no_ready_instance",
                extra=extra,
            )
        return error_response(request, 404, str(exc), code="model_not_found", extra=extra)
    if isinstance(exc, InvalidRequest):
        return error_response(request, 400, str(exc), code=exc.code, param=exc.param or None)
    if not isinstance(exc, BackendError):
        return error_response(request, 500, str(exc), type_="server_error", code="routing_error")
    route_info(request).instance = exc.instance
    reason = exc.reason
    if isinstance(exc, BackendRejected):
        status = exc.status if exc.status is not None and 400 <= exc.status < 500 else 400
        message, openai_body = _rejected_body(exc)
        if openai_body is not None and _door_shaped(request, openai_body):
            return web.Response(
                body=dumps(openai_body), status=status, content_type="application/json"
            )
        return error_response(request, status, message, code="backend_rejected")
    if reason is Reason.OVERLOADED:
        wait = exc.retry_after if exc.retry_after is not None else 1.0
        response = error_response(
            request, 429, str(exc), type_="rate_limit_error", code="backend_overloaded"
        )
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    if reason is Reason.UNAUTHORIZED:
        return error_response(
            request,
            502,
            f"{exc.instance}: the upstream refused the gateway's credentials "
            "for this instance (HTTP {}); check its api_key_env".format(exc.status or 401),
            type_="server_error",
            code="backend_misconfigured",
        )
    status, type_, code = _BY_REASON.get(reason, (502, "server_error", "backend_error"))
    return error_response(request, status, str(exc), type_=type_, code=code)


_BY_REASON: dict[Reason, tuple[int, str, str]] = {
    Reason.TIMEOUT: (504, "timeout_error", "backend_timeout"),
    Reason.REFUSED: (503, "service_unavailable", "backend_unavailable"),
    Reason.LOADING: (503, "service_unavailable", "backend_loading"),
    Reason.NOT_SUPPORTED: (501, "not_supported_error", "not_supported"),
}
