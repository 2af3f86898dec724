"""The gateway of ``routing serve``: one HTTP door for every client, whatever backend serves.

Routes (contract in DESIGN.md):

- ``POST /v1/chat/completions`` OpenAI request/response; ``stream: true`` as SSE passed
  through chunk by chunk.  ``X-Routing-Provider: P`` or ``P:instance`` narrows the choice.
- ``GET /v1/models`` models of READY instances, ``owned_by`` = ``provider:instance``.
- ``POST /v1/completions``, ``POST /v1/embeddings``, ``GET /v1/models/{id}``: the rest of
  the OpenAI door (:mod:`routing._gateway_openai_extra`).
- ``POST /v1/messages``, ``POST /v1/messages/count_tokens``: the Anthropic door
  (:mod:`routing._gateway_anthropic`).
- ``POST /api/chat``, ``GET /api/tags``, ``GET /api/version`` the Ollama door; its
  ``generate``, ``embed``, ``embeddings``, ``show``, ``ps`` and ``GET /`` in
  :mod:`routing._gateway_ollama_extra`.
- ``GET /status`` instance states (never secrets), ``GET /metrics`` Prometheus text.
- ``GET /healthz`` 200 while the gateway serves (for load balancers and Kubernetes).
- ``GET /ui`` the dashboard, ``GET /ui/data`` what it shows (:mod:`routing._dashboard`).

With ``gateway.auth`` every door needs a client key, and ``/status``, ``/metrics`` and
``/ui/data`` the admin key (:mod:`routing._gateway_auth`); the access log names the key.

A body is read within ``gateway.read_timeout``, and an ``Expect: 100-continue`` whose
``Content-Length`` is over ``gateway.max_body_bytes`` gets its 413 before any ``100
Continue``.  The server that binds the app, bounds connections and handles signals is
:mod:`routing._gateway_server`.

Every response naming an instance carries ``X-Routed-To: provider:instance`` (and
``X-Routing-Reason``).  Headers of a stream are sent only once its first chunk arrived, so
a failover before the first byte is invisible.  A client that disconnects cancels the
handler, which closes the upstream connection.  One access-log line per request goes to
logger ``routing.access``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from routing import (
    _dashboard,
    _gateway_anthropic,
    _gateway_ollama,
    _gateway_ollama_extra,
    _gateway_openai_extra,
)
from routing._access_log import AccessWriter, quote
from routing._auth import Gatekeeper
from routing._dashboard import DECISIONS
from routing._decisions import DecisionLog
from routing._engine import Router
from routing._gateway_auth import GATEKEEPER, auth_middleware, refusal_before_body
from routing._gateway_http import (
    POOL,
    RequestError,
    anthropic_door,
    dumps,
    error_response,
    provider_header,
    public_row,
    route_info,
    routing_error_response,
    routing_headers,
    session_header,
    stream_response,
)
from routing._prometheus import CONTENT_TYPE, render
from routing._reload import RouterPool
from routing._request_read import read_json_object
from routing.adapters._http import WireChunk
from routing.errors import BackendError, RoutingError

__all__ = ["POOL", "create_app"]

logger = logging.getLogger("routing.gateway")
access_log = logging.getLogger("routing.access")

_HTTP = web.AppKey("routing.http_counts", Counter)
#: Where access lines go when ``serve`` (:mod:`routing._gateway_server`) set logging up
#: itself (:mod:`routing._access_log`).
_ACCESS = web.AppKey("routing.access_writer", AccessWriter)
_STARTED = web.AppKey("routing.started", int)


async def _chat_completions(request: web.Request) -> web.StreamResponse:
    pool = request.app[POOL]
    async with pool.use() as router:
        # Fields are checked by router.complete / open_stream before anything else
        # (InvalidRequest: a 400 naming the field), for the library and every door alike.
        settings = router.config.gateway
        body = await read_json_object(
            request, settings.max_body_bytes, settings.read_timeout, wire=True
        )
        info = route_info(request)
        info.model = body.get("model")
        provider = provider_header(request)
        if body.get("stream"):
            return await _stream_sse(request, router, body, provider)
        completion = await router.complete(body, provider=provider, session=session_header(request))
        info.decided(completion.decision, completion.failovers)
        info.count_usage(completion.reply.get("usage"))
        raw = completion.raw
        return web.Response(
            body=dumps(completion.reply) if raw is None else raw, content_type="application/json"
        )


async def _stream_sse(
    request: web.Request, router: Router, body: dict[str, Any], provider: str | None
) -> web.StreamResponse:
    handle = await router.open_stream(body, provider=provider, session=session_header(request))
    try:
        route_info(request).decided(handle.decision, handle.failovers)
        response = await stream_response(request, "text/event-stream")
        usage = None
        try:
            async for chunk in handle:
                usage = chunk.get("usage") or usage
                # The backend's own line when it encodes the chunk as is (OpenAI styles).
                data = chunk.wire.encode() if type(chunk) is WireChunk else dumps(chunk)
                await response.write(b"data: " + data + b"\n\n")
        except BackendError as exc:  # after the first byte: report in-band, never retry
            error = {"message": str(exc), "type": "server_error", "code": "backend_error"}
            await response.write(b"data: " + dumps({"error": error}) + b"\n\n")
        else:
            await response.write(b"data: [DONE]\n\n")
        route_info(request).count_usage(usage)
        await response.write_eof()
        return response
    finally:
        await handle.aclose()


async def _models(request: web.Request) -> web.Response:
    if anthropic_door(request):  # an Anthropic client: its own list shape
        return await _gateway_anthropic.list_models(request)
    async with request.app[POOL].use() as router:
        pairs = await router.models()
    created = request.app[_STARTED]
    data = [
        {"id": model, "object": "model", "created": created, "owned_by": key}
        for model, key in pairs
    ]
    return web.Response(
        body=dumps({"object": "list", "data": data}), content_type="application/json"
    )


async def _status(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    router = pool.current
    payload = {
        "config": router.config.source,
        "generation": pool.generation,
        "instances": [public_row(row) for row in router.status()],
    }
    return web.Response(body=dumps(payload), content_type="application/json")


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type="application/json")


async def _expect_continue(request: web.Request) -> web.StreamResponse | None:
    """Answer ``Expect: 100-continue`` only once the announced body fits the limit.

    Runs before the handler (and the middleware): refusals are answered here, in the door's
    error shape.
    """
    expect = request.headers.get("Expect", "").lower()
    if expect != "100-continue":
        return error_response(
            request,
            417,
            f"unsupported Expect: {expect[:40]!r} (only 100-continue)",
            code="expectation_failed",
        )
    limit = request.app[POOL].current.config.gateway.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return error_response(
            request, 413, f"request body is larger than {limit} bytes", code="request_too_large"
        )
    refused = refusal_before_body(request)  # no key: 401 before the client sends the body
    if refused is not None:
        return refused
    if request.version >= (1, 1) and request.transport is not None:
        request.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


async def _metrics(request: web.Request) -> web.Response:
    router = request.app[POOL].current
    text = render(
        router.metrics, router.status(), request.app[_HTTP], request.app[GATEKEEPER].usage
    )
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _log_access(request: web.Request, status: int, started: float) -> None:
    app = request.app
    method, path = request.method, request.path
    app[_HTTP][(method, _route_name(request), status)] += 1
    info = route_info(request)
    key = info.client.name if info.client is not None else None
    if key is not None:
        app[GATEKEEPER].usage.count(key, status, info.prompt_tokens, info.completion_tokens)
    latency_ms = (time.perf_counter() - started) * 1000
    if info.decision is not None:
        app[DECISIONS].add(
            info.decision,
            method=method,
            path=path,
            status=status,
            key=key,
            latency_ms=latency_ms,
            failovers=info.failovers,
        )
    if access_log.isEnabledFor(logging.INFO):
        line = (
            f"{_access_head(method, path, status, info.instance, info.model)} "
            f"latency_ms={latency_ms:.1f} failovers={info.failovers} key={key or '-'}"
        )
        writer = app.get(_ACCESS)
        if writer is None:
            access_log.info(line)
        else:
            writer.write(line)


@functools.lru_cache(maxsize=4096)
def _access_head(
    method: str, path: str, status: int, instance: str | None, model: str | None
) -> str:
    """An access line's first fields; made once for each such five (they repeat)."""
    return (
        f"method={method} path={quote(path)} status={status} "
        f"instance={instance or '-'} model={quote(model or '-')}"
    )


@web.middleware
async def _middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        try:
            response: web.StreamResponse = await handler(request)
        except RequestError as exc:
            response = error_response(
                request, exc.status, exc.message, type_=exc.type, code=exc.code, param=exc.param
            )
        except RoutingError as exc:
            response = routing_error_response(request, exc)
        except web.HTTPException as exc:
            response = error_response(
                request, exc.status, exc.reason, code="not_found" if exc.status == 404 else None
            )
        status = response.status
        if not response.prepared:  # (streams got theirs when they started)
            response.headers.update(routing_headers(route_info(request)))
        return response
    except asyncio.CancelledError:
        status = 499  # the client went away; upstream was cancelled with the handler
        raise
    except Exception:
        logger.exception("unexpected error serving %s %s", request.method, request.path)
        response = error_response(request, 500, "internal gateway error", type_="server_error")
        response.headers.update(routing_headers(route_info(request)))
        return response
    finally:
        _log_access(request, status, started)


def create_app(pool: RouterPool, *, clock: Callable[[], float] = time.monotonic) -> web.Application:
    """The aiohttp application serving ``pool``'s current router.

    ``clock`` (seconds, monotonic) times the per-key limits of ``gateway.auth``.  Serve it
    with ``auto_decompress=False`` (as :meth:`routing._gateway_server.Gateway.start` does):
    the doors decode a request's ``Content-Encoding`` themselves, and would decode a body
    aiohttp had already inflated once more.
    """
    # Body size is enforced per request from the current config (hot reload may change it).
    app = web.Application(middlewares=[_middleware, auth_middleware], client_max_size=2**62)
    app[POOL] = pool
    app[GATEKEEPER] = Gatekeeper(clock)
    app[DECISIONS] = DecisionLog()
    app[_HTTP] = Counter()
    app[_STARTED] = int(time.time())
    app.router.add_post("/v1/chat/completions", _chat_completions, expect_handler=_expect_continue)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/status", _status)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    _gateway_ollama.add_routes(app, expect_handler=_expect_continue)
    _gateway_anthropic.add_routes(app, expect_handler=_expect_continue)
    _gateway_openai_extra.add_routes(app, expect_handler=_expect_continue)
    _gateway_ollama_extra.add_routes(app, expect_handler=_expect_continue)
    _dashboard.add_routes(app)
    return app
