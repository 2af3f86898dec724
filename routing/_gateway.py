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

The edge bounds what a client can hold: ``gateway.read_timeout`` closes a connection that
has not sent a whole request head in time (and bounds reading a body), connections past
``gateway.max_connections`` are closed at once, an ``Expect: 100-continue`` whose
``Content-Length`` is over ``gateway.max_body_bytes`` gets its 413 before any ``100
Continue``, and a malformed HTTP message is logged as one line (logger ``routing.http``),
never as a traceback.

Every response naming an instance carries ``X-Routed-To: provider:instance`` (and
``X-Routing-Reason``).  Headers of a stream are sent only once its first chunk arrived, so
a failover before the first byte is invisible.  A client that disconnects cancels the
handler, which closes the upstream connection.  One access-log line per request goes to
logger ``routing.access``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from routing import (
    _dashboard,
    _gateway_anthropic,
    _gateway_ollama,
    _gateway_ollama_extra,
    _gateway_openai_extra,
)
from routing._access_log import FORMAT, AccessWriter, LogFormatter, quote
from routing._auth import Gatekeeper, is_loopback
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
    read_json_object,
    route_info,
    routing_error_response,
    routing_headers,
    session_header,
    stream_response,
)
from routing._prometheus import CONTENT_TYPE, render
from routing._reload import ConfigWatcher, RouterPool
from routing.adapters._http import WireChunk
from routing.config import Config, load_config
from routing.errors import BackendError, ConfigError, ConfigIssue, RoutingError

if TYPE_CHECKING:
    from routing._workers import WorkerSeat

__all__ = ["POOL", "BindError", "Gateway", "create_app", "serve"]

logger = logging.getLogger("routing.gateway")
access_log = logging.getLogger("routing.access")

_HTTP = web.AppKey("routing.http_counts", Counter)
#: Where access lines go when ``serve`` set logging up itself (:mod:`routing._access_log`).
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
    app[_HTTP][(request.method, _route_name(request), status)] += 1
    info = route_info(request)
    key = info.client.name if info.client is not None else None
    if key is not None:
        app[GATEKEEPER].usage.count(key, status, info.prompt_tokens, info.completion_tokens)
    latency_ms = (time.perf_counter() - started) * 1000
    if info.decision is not None:
        app[DECISIONS].add(
            info.decision,
            method=request.method,
            path=request.path,
            status=status,
            key=key,
            latency_ms=latency_ms,
            failovers=info.failovers,
        )
    if access_log.isEnabledFor(logging.INFO):
        line = (
            f"method={request.method} path={quote(request.path)} status={status} "
            f"instance={info.instance or '-'} model={quote(info.model or '-')} "
            f"latency_ms={latency_ms:.1f} failovers={info.failovers} key={key or '-'}"
        )
        writer = app.get(_ACCESS)
        if writer is None:
            access_log.info(line)
        else:
            writer.write(line)


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
    with ``auto_decompress=False`` (as :meth:`Gateway.start` does): the doors decode a
    request's ``Content-Encoding`` themselves, and would decode a body aiohttp had
    already inflated once more.
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


class BindError(RoutingError):
    """The gateway could not listen on its address (in use, not allowed, no such host)."""


class _OneLineLogger(logging.Logger):
    """aiohttp's server logger: a malformed request is one line, never a traceback.

    aiohttp logs a bad request with ``exc_info``; the exception's type and first line are
    folded into the message instead, and ``exception()`` becomes a warning.
    """

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        self.warning(msg, *args, exc_info=exc_info, **kwargs)

    def _log(
        self,
        level: int,
        msg: object,
        args: Any,
        exc_info: Any = None,
        extra: Any = None,
        stack_info: bool = False,
        stacklevel: int = 1,
    ) -> None:
        error = sys.exc_info()[1] if exc_info is True else exc_info
        if isinstance(error, tuple):
            error = error[1]
        if isinstance(error, BaseException):
            first = (str(error).splitlines() or [""])[0][:200]
            msg = f"{msg} ({type(error).__name__}: {first})"
        super()._log(level, msg, args, None, extra, False, stacklevel)


_http_log = _OneLineLogger("routing.http")
_http_log.parent = logging.getLogger("routing")


class _Server(web.Server):
    """web.Server that closes connections past ``max_connections`` at once."""

    def __init__(self, *args: Any, max_connections: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0

    def connection_made(self, handler: Any, transport: Any) -> None:
        super().connection_made(handler, transport)
        self.open += 1
        if self.open > self.max_connections:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                logger.warning(
                    "connection limit %d reached: closing new connections (%d so far)",
                    self.max_connections,
                    self.refused,
                )
            transport.close()

    def connection_lost(self, handler: Any, exc: BaseException | None = None) -> None:
        self.open -= 1
        super().connection_lost(handler, exc)


class _Runner(web.AppRunner):
    """AppRunner whose server bounds open connections (the app's handler, our server)."""

    def __init__(
        self,
        app: web.Application,
        max_connections: int,
        *,
        shutdown_timeout: float,
        **server_kwargs: Any,
    ) -> None:
        super().__init__(app, shutdown_timeout=shutdown_timeout, **server_kwargs)
        self._max_connections = max_connections
        self._server_kwargs = server_kwargs  # what each connection's RequestHandler takes

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # starts the app up, freezes it
        return _Server(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=asyncio.get_running_loop(),
            max_connections=self._max_connections,
            **{k: v for k, v in self._server_kwargs.items() if k != "handler_cancellation"},
        )


class Gateway:
    """The gateway as an object: ``async with Gateway(config, config_path=...) as gw:``.

    ``start(host, port)`` binds (port 0 picks a free port; see :attr:`url`); with a
    ``config_path`` the file is watched and reloaded (see :mod:`routing._reload`).
    """

    def __init__(
        self,
        config: Config,
        *,
        config_path: str | None = None,
        environ: Mapping[str, str] | None = None,
        reload_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = RouterPool(Router(config))
        self.app = create_app(self.pool, clock=clock)
        self.watcher = (
            None
            if config_path is None
            else ConfigWatcher(config_path, self.apply, environ=environ, interval=reload_interval)
        )
        self._runner: web.AppRunner | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self.host = config.gateway.host
        self.port = config.gateway.port

    @property
    def router(self) -> Router:
        """The router new requests go to."""
        return self.pool.current

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (the real port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def apply(self, config: Config) -> None:
        """Serve ``config`` from now on; requests in flight finish on the old router.

        A reload cannot drop ``gateway.auth`` while the gateway listens on an address other
        than loopback (:class:`ConfigError`; the old config keeps serving): that takes a
        restart, where ``routing serve`` asks for ``--allow-unauthenticated``.
        """
        if (
            config.gateway.auth is None
            and self.router.config.gateway.auth is not None
            and not is_loopback(self.host)
        ):
            raise ConfigError(
                [
                    ConfigIssue(
                        config.source,
                        1,
                        1,
                        "$.gateway",
                        f"a reload cannot remove gateway.auth while "
                        f"serving {self.host} (not loopback); restart the gateway to serve without "
                        "keys",
                    )
                ]
            )
        if (config.gateway.host, config.gateway.port) != (
            self.router.config.gateway.host,
            self.router.config.gateway.port,
        ):
            logger.warning("gateway host/port changes need a restart; still on %s", self.url)
        self.pool.swap(Router(config))

    async def start(
        self, host: str | None = None, port: int | None = None, *, reuse_port: bool = False
    ) -> Gateway:
        """Bind ``host:port`` (default: the config's ``gateway`` section) and serve.

        ``reuse_port`` sets ``SO_REUSEPORT`` (several workers on one port, Linux).
        """
        self.host = host if host is not None else self.host
        self.port = port if port is not None else self.port
        settings = self.router.config.gateway
        runner = _Runner(
            self.app,
            settings.max_connections,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=1.0,
            keepalive_timeout=settings.read_timeout,
            logger=_http_log,
            # After an early answer (408, 413) the rest of a body is drained
            # for at most this long before the connection closes.
            lingering_time=min(settings.read_timeout, 2.0),
            # Bodies reach the doors as sent; read_json_object decodes them, bounded, and
            # answers a bad or unsupported Content-Encoding in the door's shape.
            auto_decompress=False,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_port=reuse_port or None)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            await self.pool.aclose()
            why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            raise BindError(f"cannot listen on {self.host}:{self.port}: {why}") from exc
        except BaseException:
            await runner.cleanup()
            await self.pool.aclose()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        if self.watcher is not None:
            self._watch_task = asyncio.get_running_loop().create_task(self.watcher.run())
        return self

    async def stop(self) -> None:
        """Stop watching, stop serving (in-flight requests get a moment) and close routers."""
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self.pool.aclose()

    async def __aenter__(self) -> Gateway:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(
    config_path: str,
    host: str | None = None,
    port: int | None = None,
    *,
    worker: WorkerSeat | None = None,
) -> None:
    """Run the gateway for ``config_path`` until SIGINT or SIGTERM; SIGHUP reloads.

    Logs ``event loop: uvloop`` (or ``asyncio``) on logger ``routing.gateway``, then prints
    ``listening on http://HOST:PORT``, the first line on stdout.  Raises
    :class:`ConfigError` when the initial config is invalid; later invalid configs are
    logged and the old one kept.
    ``worker``: this process is one of ``routing serve --workers N`` (:mod:`routing._workers`).
    """
    config = load_config(config_path)
    if not logging.getLogger().handlers:
        formatter = LogFormatter(FORMAT)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        # Our format shows none of these: skip gathering them for every log line (the
        # logging HOWTO's "Optimization" flags; only when the logging setup is ours).
        logging._srcfile = None
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        writer = AccessWriter(sys.stderr, formatter) if AccessWriter.applies(handler) else None
    else:
        writer = None
    gateway = Gateway(config, config_path=os.fspath(config_path))
    if writer is not None:
        gateway.app[_ACCESS] = writer
    if worker is not None:
        worker.attach(gateway)
    await gateway.start(host, port, reuse_port=worker is not None)
    loop = asyncio.get_running_loop()
    # The package the loop's class comes from: ``uvloop`` (uvloop.Loop) or ``asyncio``
    # (asyncio.unix_events...), whatever ``--loop`` asked for (:mod:`routing._loop`).
    logger.info("event loop: %s", type(loop).__module__.partition(".")[0])
    # Config, routes and modules live as long as the process: keep the cyclic GC from
    # walking them again and again while requests allocate.
    gc.freeze()
    stop = asyncio.Event()
    handled: list[signal.Signals] = []
    try:
        if worker is not None:
            await worker.start(stop.set)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        if gateway.watcher is not None and hasattr(signal, "SIGHUP"):
            loop.add_signal_handler(signal.SIGHUP, gateway.watcher.trigger)
            handled.append(signal.SIGHUP)
        print(f"listening on {gateway.url}", flush=True)
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        if worker is not None:
            await worker.stop()
        await gateway.stop()
        if writer is not None:
            writer.flush()
