"""What the gateway doors share: the request's route, routing and client headers, errors.

A request's :class:`RouteInfo`, the ``X-Routed-To``/``X-Routing-Reason`` headers of its
answer, the headers a client routes with, and errors answered in the shape of its door.
Bodies are read by :mod:`routing._request_read`.

The OpenAI door answers errors as ``{"error": {"message", "type", "code"}}``; the Ollama
door (paths under ``/api/``) as Ollama does, ``{"error": "message"}``; the Anthropic door
(``/v1/messages``, and ``/v1/models`` asked by an Anthropic client) as Anthropic does,
``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from routing._auth import ClientKey
from routing._decision import Decision
from routing._reload import RouterPool
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
    try:
        info: RouteInfo = request[ROUTE]
    except KeyError:
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
        headers["X-Routing-Reason"] = _header_text(reason)
    return headers


# A decision, and so its reason, is reused while nothing changes: its text is made once.
@functools.lru_cache(maxsize=1024)
def _header_text(reason: str) -> str:
    return reason.encode("ascii", "backslashreplace").decode().replace("\n", " ")[:500]


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
