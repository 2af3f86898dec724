"""The gateway's Anthropic door: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

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
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from routing._dispatch import count_tokens
from routing._gateway_http import (
    POOL,
    dumps,
    provider_header,
    read_json_object,
    route_info,
    session_header,
)
from routing._operations import Operation
from routing.errors import BackendError, Reason

if TYPE_CHECKING:
    from routing._engine import Router

__all__ = ["add_routes"]

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
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
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


def add_routes(app: web.Application, *, expect_handler: Any = None) -> None:
    """Add the Anthropic door to ``app`` (whose :data:`POOL` holds the router pool)."""
    app.router.add_post("/v1/messages", _messages, expect_handler=expect_handler)
    app.router.add_post("/v1/messages/count_tokens", _count_tokens, expect_handler=expect_handler)
