"""``routing serve --workers N``: N worker processes serving one port (Linux ``SO_REUSEPORT``).

The parent (:func:`supervise`) serves nothing itself.  It reserves the port (a socket bound
with ``SO_REUSEPORT`` and never listening: port 0 is resolved once, and no other program can
take the port while a worker restarts), starts N workers (``python -m routing._workers``),
each binding its own listening socket with ``reuse_port`` so the kernel spreads new
connections over them, and prints ``listening on http://HOST:PORT`` once all listen.

Signals: SIGTERM and SIGINT are forwarded (each worker stops like ``--workers 1``: in-flight
requests get the same grace) and the parent exits 0 once every worker has exited (SIGKILL
after :data:`STOP_GRACE` seconds); SIGHUP is forwarded (every worker reloads its config).  A
worker that exits on its own is restarted; more than :data:`MAX_CRASHES` such exits within
:data:`CRASH_WINDOW` seconds stop everything with exit code 4.  A worker whose parent is gone
stops by itself (its stdin, a pipe from the parent, ends), so a SIGKILLed parent leaves no
orphan serving.

Across workers (:class:`WorkerSeat`, inside each worker):

- ``/metrics`` sums every worker's counters at scrape time: the worker that takes the scrape
  asks each sibling for a snapshot of its counters over a Unix socket in a private directory
  (mode 0700) and renders the sum; ``routing_workers`` says how many answered.  The
  ``routing_instance_state`` gauge is the answering worker's view (each worker probes on its
  own).  Counters of a worker that died start again from 0 in its successor (a counter reset,
  which Prometheus' ``rate`` handles).
- ``/status`` is the answering worker's view plus ``worker`` (its index and pid) and
  ``workers`` (index, pid and config generation of every worker that answered).
- every response carries ``X-Routing-Worker: INDEX``.

Probes are not shared: each worker probes on demand with the config's TTL, so N workers send
at most N probes per instance per TTL.  Per-key limits of ``gateway.auth`` are kept per
worker (N workers admit up to N times ``requests_per_minute``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from routing._auth import KeyUsage
from routing._gateway_auth import GATEKEEPER
from routing._gateway_http import POOL, dumps, public_row
from routing._loop import LOOPS, run
from routing._metrics import Metrics
from routing._prometheus import CONTENT_TYPE, render

if TYPE_CHECKING:
    from routing._gateway_server import Gateway

__all__ = ["CRASH_WINDOW", "MAX_CRASHES", "STOP_GRACE", "WorkerSeat", "supervise"]

logger = logging.getLogger("routing.workers")

#: More unexpected worker exits than this within :data:`CRASH_WINDOW` seconds: give up.
MAX_CRASHES = 5
CRASH_WINDOW = 60.0
#: Seconds the workers get to stop after SIGTERM before they are killed.
STOP_GRACE = 15.0
#: Seconds a worker gets to print its ``listening on`` line.
START_TIMEOUT = 60.0
#: Seconds a scrape waits for a sibling's snapshot.
SNAPSHOT_TIMEOUT = 2.0
EXIT_BACKEND = 4


# --- inside a worker ------------------------------------------------------------------------


def _pairs(counter: Any) -> list[list[Any]]:
    """A counter keyed by tuples or strings as JSON-friendly ``[key, value]`` pairs."""
    return [[list(key) if isinstance(key, tuple) else key, value] for key, value in counter.items()]


def _add(target: Any, pairs: Iterable[list[Any]]) -> None:
    for key, value in pairs:
        key = tuple(key) if isinstance(key, list) else key
        target[key] = target.get(key, 0) + value


class WorkerSeat:
    """One worker's place among its siblings: snapshots, the summed ``/metrics``, ``/status``."""

    def __init__(self, index: int, count: int, directory: str) -> None:
        self.index = index
        self.count = count
        self.directory = directory
        self._gateway: Gateway | None = None
        self._server: asyncio.AbstractServer | None = None
        self._watch: asyncio.Task[None] | None = None

    def socket_path(self, index: int) -> str:
        """Where worker ``index`` answers snapshot requests."""
        return os.path.join(self.directory, f"worker-{index}.sock")

    def attach(self, gateway: Gateway) -> None:
        """Add the summed ``/metrics``, ``/status`` and the worker header (before start)."""
        self._gateway = gateway
        gateway.app.middlewares.append(self._middleware)
        gateway.app.on_response_prepare.append(self._header)

    async def start(self, stop: Callable[[], None]) -> None:
        """Answer siblings' snapshot requests; call ``stop`` when the parent is gone."""
        path = self.socket_path(self.index)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a crashed predecessor's socket
        self._server = await asyncio.start_unix_server(self._answer, path)
        self._watch = asyncio.get_running_loop().create_task(self._watch_parent(stop))

    async def stop(self) -> None:
        """Stop answering siblings and watching the parent."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _watch_parent(self, stop: Callable[[], None]) -> None:
        # stdin is a pipe the parent never writes to: EOF means the parent is gone.
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
        )
        await reader.read()
        logger.warning("worker %d: the supervising process is gone; stopping", self.index)
        stop()

    def snapshot(self) -> dict[str, Any]:
        """This worker's counters and identity, JSON-friendly."""
        assert self._gateway is not None
        app = self._gateway.app
        pool = app[POOL]
        metrics = pool.current.metrics
        usage = app[GATEKEEPER].usage
        return {
            "index": self.index,
            "pid": os.getpid(),
            "generation": pool.generation,
            "metrics": {
                f.name: _pairs(getattr(metrics, f.name)) for f in dataclasses.fields(Metrics)
            },
            "http": _pairs(_http_counts(app)),
            "keys": {f.name: _pairs(getattr(usage, f.name)) for f in dataclasses.fields(KeyUsage)},
        }

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(json.dumps(self.snapshot()).encode())
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _sibling(self, index: int) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(SNAPSHOT_TIMEOUT):
                reader, writer = await asyncio.open_unix_connection(self.socket_path(index))
                try:
                    data = await reader.read()
                finally:
                    writer.close()
            snapshot: dict[str, Any] = json.loads(data)
            return snapshot
        except (OSError, TimeoutError, ValueError) as exc:  # restarting, or gone
            logger.info(
                "worker %d: no snapshot from worker %d (%s)", self.index, index, type(exc).__name__
            )
            return None

    async def snapshots(self) -> list[dict[str, Any]]:
        """Every worker's snapshot that could be had now, this worker's first."""
        others = await asyncio.gather(
            *(self._sibling(i) for i in range(self.count) if i != self.index)
        )
        return [self.snapshot(), *(s for s in others if s is not None)]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "GET" and request.path == "/metrics":
            return await self._metrics(request)
        if request.method == "GET" and request.path == "/status":
            return await self._status(request)
        response: web.StreamResponse = await handler(request)
        return response

    async def _metrics(self, request: web.Request) -> web.Response:
        snapshots = await self.snapshots()
        metrics, http, keys = Metrics(), Counter[tuple[str, str, int]](), KeyUsage()
        for snap in snapshots:
            for name, pairs in snap["metrics"].items():
                _add(getattr(metrics, name), pairs)
            _add(http, snap["http"])
            for name, pairs in snap["keys"].items():
                _add(getattr(keys, name), pairs)
        text = render(metrics, request.app[POOL].current.status(), http, keys)
        text += (
            "# HELP routing_workers Workers whose counters this scrape sums.\n"
            f"# TYPE routing_workers gauge\nrouting_workers {len(snapshots)}\n"
        )
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def _status(self, request: web.Request) -> web.Response:
        pool = request.app[POOL]
        router = pool.current
        workers = [
            {"index": s["index"], "pid": s["pid"], "generation": s["generation"]}
            for s in sorted(await self.snapshots(), key=lambda s: int(s["index"]))
        ]
        payload = {
            "config": router.config.source,
            "generation": pool.generation,
            "instances": [public_row(row) for row in router.status()],
            "worker": {"index": self.index, "pid": os.getpid()},
            "workers": workers,
        }
        return web.Response(body=dumps(payload), content_type="application/json")

    async def _header(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Routing-Worker"] = str(self.index)


def _http_counts(app: web.Application) -> Counter[tuple[str, str, int]]:
    from routing._gateway import _HTTP  # the gateway's own per-route response counts

    return app[_HTTP]


def _worker_main(argv: list[str] | None = None) -> int:
    """``python -m routing._workers CONFIG HOST PORT INDEX COUNT DIR``: one worker."""
    from routing._gateway_server import serve
    from routing.errors import ConfigError, RoutingError

    p = argparse.ArgumentParser(prog="routing-worker")
    p.add_argument("config")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("index", type=int)
    p.add_argument("count", type=int)
    p.add_argument("directory")
    p.add_argument("--loop", choices=LOOPS, default="auto")
    args = p.parse_args(argv)
    seat = WorkerSeat(args.index, args.count, args.directory)
    try:
        run(serve(args.config, args.host, args.port, worker=seat), args.loop)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 2
    except RoutingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


# --- the parent -----------------------------------------------------------------------------


def _reserve(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with SO_REUSEPORT, never listening (holds the port)."""
    from routing._gateway_server import BindError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise BindError(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise BindError(f"cannot listen on {host}:{port}: {why}") from exc
    return sock


class _Supervisor:
    """Starts, restarts and stops the workers (one event loop, in the parent)."""

    def __init__(
        self, config_path: str, host: str, port: int, count: int, directory: str, loop: str
    ) -> None:
        self.args = [os.fspath(config_path), host, str(port)]
        self.loop = loop
        self.count = count
        self.directory = directory
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = asyncio.Event()
        self.crashes: collections.deque[float] = collections.deque()
        self.gave_up = False

    async def spawn(self, index: int) -> str:
        """Start worker ``index``; return its ``listening on`` line (raise if it never comes)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "routing._workers",
            *self.args,
            str(index),
            str(self.count),
            self.directory,
            "--loop",
            self.loop,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self.procs[index] = proc
        assert proc.stdout is not None
        try:
            line = (await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)).decode()
        except TimeoutError:
            line = ""
        if not line.startswith("listening on "):
            raise RuntimeError(f"worker {index} did not start")
        return line.strip()

    async def watch(self, index: int) -> None:
        """Restart worker ``index`` whenever it exits on its own, until stopping or giving up."""
        while True:
            proc = self.procs[index]
            assert proc.stdout is not None
            await proc.stdout.read()  # drained until the worker exits
            code = await proc.wait()
            if self.stopping.is_set():
                return
            now = time.monotonic()
            self.crashes.append(now)
            while self.crashes and now - self.crashes[0] > CRASH_WINDOW:
                self.crashes.popleft()
            if len(self.crashes) > MAX_CRASHES:
                logger.error(
                    "workers exited %d times within %.0f s; giving up",
                    len(self.crashes),
                    CRASH_WINDOW,
                )
                self.gave_up = True
                self.stopping.set()
                return
            logger.warning("worker %d (pid %d) exited with %s; restarting", index, proc.pid, code)
            try:
                await self.spawn(index)
            except RuntimeError as exc:
                logger.error("%s", exc)

    def signal_all(self, sig: signal.Signals) -> None:
        """Send ``sig`` to every live worker."""
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)

    async def stop_all(self) -> None:
        """SIGTERM every worker, wait (bounded), SIGKILL what is left, reap everything."""
        self.stopping.set()
        self.signal_all(signal.SIGTERM)
        waits = [proc.wait() for proc in self.procs.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), STOP_GRACE)
        except TimeoutError:
            logger.warning("workers still running after %.0f s: killing them", STOP_GRACE)
            self.signal_all(signal.SIGKILL)
            await asyncio.gather(*(proc.wait() for proc in self.procs.values()))


async def _supervise(config_path: str, host: str, port: int, count: int, loop_choice: str) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
    reservation = _reserve(host, port)
    directory = tempfile.mkdtemp(prefix="routing-workers-")  # mode 0700
    sup = _Supervisor(
        config_path, host, reservation.getsockname()[1], count, directory, loop_choice
    )
    loop = asyncio.get_running_loop()
    handled = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sup.stopping.set)
    loop.add_signal_handler(signal.SIGHUP, sup.signal_all, signal.SIGHUP)
    watchers: list[asyncio.Task[None]] = []
    try:
        starting: asyncio.Future[list[str]] = asyncio.gather(*(sup.spawn(i) for i in range(count)))
        stopped: asyncio.Future[Any] = loop.create_task(sup.stopping.wait())
        await asyncio.wait([stopped, starting], return_when=asyncio.FIRST_COMPLETED)
        if not sup.stopping.is_set() and starting.exception() is not None:
            stopped.cancel()
            print(f"error: {starting.exception()}", file=sys.stderr)
            return EXIT_BACKEND
        if sup.stopping.is_set():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await starting
            return 0
        print(starting.result()[0], flush=True)
        watchers = [loop.create_task(sup.watch(i)) for i in range(count)]
        await stopped
        return EXIT_BACKEND if sup.gave_up else 0
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await sup.stop_all()
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        reservation.close()
        shutil.rmtree(directory, ignore_errors=True)


def supervise(config_path: str, host: str, port: int, count: int, *, loop: str = "auto") -> int:
    """Run ``count`` workers of ``routing serve`` on ``host:port``; return the exit code.

    ``loop``: each worker's event loop (:mod:`routing._loop`); the parent only supervises.
    """
    if not sys.platform.startswith("linux"):
        from routing._gateway_server import BindError

        raise BindError(
            "--workers needs SO_REUSEPORT load balancing (Linux); "
            "run one process per port behind a load balancer instead"
        )
    return asyncio.run(_supervise(config_path, host, port, count, loop))


if __name__ == "__main__":
    sys.exit(_worker_main())
