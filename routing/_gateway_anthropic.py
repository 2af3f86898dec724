"""The gateway's Anthropic door: ``POST /v1/messages``, ``POST /v1/messages/count_tokens``,
and ``GET /v1/models`` / ``GET /v1/models/{id}`` for Anthropic clients.

Anthropic clients (Claude Code with ``ANTHROPIC_BASE_URL``, the ``anthropic`` SDKs) talk to
the gateway as to Anthropic's API, whatever backend serves the model: the request is routed
by model like every other (operation ``messages``), passed through to instances that speak
Messages natively (an ``anthropic`` instance, a llama.cpp server) and translated to and from
OpenAI chat for the others (:mod:`routing._anthropic_convert`,
:mod:`routing._anthropic_reply`); ``X-Routing-Reason`` says which.  A stream is
Anthropic's named SSE events (``event: message_start`` ...), a failure
after its first byte an ``event: error``; errors before it come as
``{"type": "error", "error": {"type", "message"}}``.  ``metadata.user_id`` is the sticky
strategy's session key (after ``X-Session-ID``).

A request passed through goes with the client's ``anthropic-version`` (else the adapter's
default) and ``anthropic-beta`` (repeated headers and comma-separated values joined into one
comma-separated value); a translated one never carries them, and is not refused for them.
The client's own credentials (its gateway key) are never forwarded.

``GET /v1/models`` and ``GET /v1/models/{id}`` are the OpenAI door's routes; asked with an
``anthropic-version`` header (:func:`routing._gateway_http.anthropic_door`), they answer in
Anthropic's shapes instead (:func:`list_models`, :func:`get_model`): ``{"type": "model", "id",
"display_name", "created_at"}`` objects (the display name is the id; the release date, not
known, is the epoch, as Anthropic writes an unknown one), listed a page at a time by
``limit`` (default 20, at most 1000), ``after_id`` and ``before_id`` with ``has_more``,
``first_id`` and ``last_id``; an unknown model is a ``not_found_error``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from routing._dispatch import count_tokens
from routing._gateway_http import (
    POOL,
    RequestError,
    dumps,
    provider_header,
    route_info,
    session_header,
    stream_response,
)
from routing._operations import Operation
from routing._request_read import read_json_object
from routing.errors import BackendError, Reason

if TYPE_CHECKING:
    from routing._engine import Router

__all__ = ["add_routes", "get_model", "list_models"]

_EVENT_NAME = re.compile(r"[a-z_]{1,64}")


def _forwarded(request: web.Request) -> dict[str, str]:
    """The client's Anthropic headers sent on with a request passed through."""
    out: dict[str, str] = {}
    version = request.headers.get("anthropic-version", "").strip()
    if version:
        out["anthropic-version"] = version
    betas = [
        beta.strip()
        for value in request.headers.getall("anthropic-beta", ())
        for beta in value.split(",")
    ]
    if any(betas):
        out["anthropic-beta"] = ",".join(beta for beta in betas if beta)
    return out


def _usage(info: Any, usage: Any) -> None:
    """Count Anthropic ``usage`` (input/output tokens) in the request's accounting."""
    if isinstance(usage, dict):
        info.count_usage(
            {
                "prompt_tokens": usage.get("input_tokens"),
                "completion_tokens": usage.get("output_tokens"),
            }
        )


async def _messages(request: web.Request) -> web.StreamResponse:
    async with request.app[POOL].use() as router:
        settings = router.config.gateway
        body = await read_json_object(request, settings.max_body_bytes, settings.read_timeout)
        info = route_info(request)
        info.model = body.get("model")
        provider = provider_header(request)
        if body.get("stream"):
            return await _stream(request, router, body, provider)
        completion = await router.complete(
            body,
            provider=provider,
            session=session_header(request),
            operation=Operation.MESSAGES,
            extra_headers=_forwarded(request),
        )
        info.decided(completion.decision, completion.failovers)
        _usage(info, completion.reply.get("usage"))
        raw = completion.raw
        return web.Response(
            body=dumps(completion.reply) if raw is None else raw, content_type="application/json"
        )


def _event(event: dict[str, Any]) -> bytes:
    kind = event.get("type")
    name = kind if isinstance(kind, str) and _EVENT_NAME.fullmatch(kind) else "message"
    return b"event: " + name.encode() + b"\ndata: " + dumps(event) + b"\n\n"


async def _stream(
    request: web.Request, router: Router, body: dict[str, Any], provider: str | None
) -> web.StreamResponse:
    handle = await router.open_stream(
        body,
        provider=provider,
        session=session_header(request),
        operation=Operation.MESSAGES,
        extra_headers=_forwarded(request),
    )
    try:
        info = route_info(request)
        info.decided(handle.decision, handle.failovers)
        response = await stream_response(request, "text/event-stream")
        usage: dict[str, Any] = {}
        try:
            async for event in handle:
                kind = event.get("type")
                if kind == "message_start" and isinstance(event.get("message"), dict):
                    usage.update(event["message"].get("usage") or {})
                elif kind == "message_delta" and isinstance(event.get("usage"), dict):
                    usage.update(event["usage"])
                await response.write(_event(event))
        except BackendError as exc:  # after the first byte: in-band, as Anthropic does
            kind = "overloaded_error" if exc.reason is Reason.OVERLOADED else "api_error"
            await response.write(
                _event({"type": "error", "error": {"type": kind, "message": str(exc)}})
            )
        _usage(info, usage)
        await response.write_eof()
        return response
    finally:
        await handle.aclose()


async def _count_tokens(request: web.Request) -> web.Response:
    async with request.app[POOL].use() as router:
        settings = router.config.gateway
        body = await read_json_object(request, settings.max_body_bytes, settings.read_timeout)
        info = route_info(request)
        info.model = body.get("model")
        reply, raw, decision = await count_tokens(
            router,
            body,
            provider=provider_header(request),
            session=session_header(request),
            extra_headers=_forwarded(request),
        )
        info.decided(decision, 0)
        return web.Response(
            body=dumps(reply) if raw is None else raw, content_type="application/json"
        )


#: A model's release date, which the gateway does not know (Anthropic's "unknown").
_UNKNOWN_DATE = "1970-01-01T00:00:00Z"
_DEFAULT_LIMIT = 20
_MAX_LIMIT = 1000


def _model_info(model: str) -> dict[str, Any]:
    return {"type": "model", "id": model, "display_name": model, "created_at": _UNKNOWN_DATE}


async def _served(request: web.Request) -> dict[str, str]:
    """Model id -> the ``provider:instance`` of its first READY instance."""
    async with request.app[POOL].use() as router:
        pairs = await router.models()
    served: dict[str, str] = {}
    for model, key in pairs:
        served.setdefault(model, key)
    return served


def _limit(request: web.Request) -> int:
    text = request.query.get("limit")
    if text is None:
        return _DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= _MAX_LIMIT:
        raise RequestError(400, f"limit: must be a whole number from 1 to {_MAX_LIMIT}")
    return limit


def _cursor(ids: list[str], request: web.Request, name: str) -> int | None:
    """The position of the model a cursor (``after_id``, ``before_id``) names, if given."""
    model = request.query.get(name)
    if model is None:
        return None
    try:
        return ids.index(model)
    except ValueError:
        raise RequestError(400, f"{name}: no model {model!r} on any READY instance") from None


async def list_models(request: web.Request) -> web.Response:
    """``GET /v1/models`` in Anthropic's shape: one page of the models of READY instances."""
    ids = list(await _served(request))
    limit = _limit(request)
    after, before = _cursor(ids, request, "after_id"), _cursor(ids, request, "before_id")
    if before is not None:
        start = max(0, before - limit)
        page, has_more = ids[start:before], start > 0
    else:
        start = 0 if after is None else after + 1
        page, has_more = ids[start : start + limit], start + limit < len(ids)
    body = {
        "data": [_model_info(model) for model in page],
        "has_more": has_more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }
    return web.Response(body=dumps(body), content_type="application/json")


async def get_model(request: web.Request, model: str) -> web.Response:
    """``GET /v1/models/{model}`` in Anthropic's shape (404 ``not_found_error`` when no READY
    instance serves it)."""
    key = (await _served(request)).get(model)
    if key is None:
        raise RequestError(404, f"The model '{model}' does not exist on any READY instance")
    route_info(request).instance = key
    return web.Response(body=dumps(_model_info(model)), content_type="application/json")


def add_routes(app: web.Application, *, expect_handler: Any = None) -> None:
    """Add the Anthropic door to ``app`` (whose :data:`POOL` holds the router pool)."""
    app.router.add_post("/v1/messages", _messages, expect_handler=expect_handler)
    app.router.add_post("/v1/messages/count_tokens", _count_tokens, expect_handler=expect_handler)
