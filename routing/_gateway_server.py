"""The gateway's HTTP server: :class:`Gateway` serves :func:`routing._gateway.create_app`'s app.

``Gateway(config).start(host, port)`` binds (port 0 picks a free port), watches and reloads
the config file when given one; :func:`serve` runs it for ``routing serve`` until SIGINT or
SIGTERM, reloads on SIGHUP, and prints ``listening on http://HOST:PORT`` as its first line
on stdout.

The edge bounds what a client can hold: ``gateway.read_timeout`` closes a connection that
has not sent a whole request head in time, connections past ``gateway.max_connections`` are
closed at once, and a malformed HTTP message is logged as one line (logger
``routing.http``), never as a traceback.
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
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from routing import _json
from routing._access_log import FORMAT, AccessWriter, LogFormatter
from routing._auth import is_loopback
from routing._engine import Router
from routing._gateway import _ACCESS, create_app
from routing._reload import ConfigWatcher, RouterPool
from routing.config import Config, load_config
from routing.errors import ConfigError, ConfigIssue, RoutingError

if TYPE_CHECKING:
    from routing._workers import WorkerSeat

__all__ = ["BindError", "Gateway", "serve"]

logger = logging.getLogger("routing.gateway")


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


#: The cyclic GC's first threshold in ``routing serve`` (CPython's default: 700).  The
#: requests in flight hold thousands of young containers (coroutines, dicts, headers); at 700
#: net allocations the collector walks them every few requests and promotes them, to walk
#: them again in the older generations: about 40,000 instructions per request at concurrency
#: 16, 5% of the gateway's (benchmarks/REPORT.md).  Hardly any request garbage is cyclic:
#: the peak RSS over 10,000 requests at c=32 was the same (47.2 MB, 47.3 MB at 700).
GC_THRESHOLD = 10_000


def _tune_gc() -> None:
    """Set the cyclic GC up for serving (:data:`GC_THRESHOLD`) and log it.

    Config, routes and modules live as long as the process: frozen (``gc.freeze``), the
    collector never walks them again.  Only ``routing serve`` does this: a program that
    embeds :class:`Gateway` keeps its own GC settings.
    """
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    gc.freeze()
    logger.info("gc: threshold %d, %d objects frozen", GC_THRESHOLD, gc.get_freeze_count())


async def serve(
    config_path: str,
    host: str | None = None,
    port: int | None = None,
    *,
    worker: WorkerSeat | None = None,
) -> None:
    """Run the gateway for ``config_path`` until SIGINT or SIGTERM; SIGHUP reloads.

    Logs ``event loop: uvloop`` (or ``asyncio``), ``json parser: msgspec`` (or ``json``) and
    the GC's settings (:func:`_tune_gc`) on logger ``routing.gateway``, then prints
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
    logger.info("json parser: %s", "msgspec" if _json.FAST else "json")  # (routing._json)
    _tune_gc()
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
