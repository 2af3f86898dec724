"""Hot reload: swap the gateway's Router for a new config while requests are in flight.

:class:`RouterPool` holds the current :class:`~routing._engine.Router`; every request takes
it with ``async with pool.use() as router`` and finishes on that router even if a reload
swaps in a new one meanwhile.  A replaced router is closed once its last request is done.

:class:`ConfigWatcher` polls the config file (``stat`` every ``interval`` seconds, a re-read
only when size, mtime, inode or type moved, a reload only when the bytes differ) and reloads
at once when :meth:`ConfigWatcher.trigger` is called (``SIGHUP``).  Whatever goes wrong while
reading, checking or applying a new file (a :class:`~routing.errors.ConfigError` or any other
exception), the running config stays and watching goes on: the failure is logged as one
located line (``FILE:LINE:COL: PATH: message``, no traceback), once for as long as the file
stays the same (a ``SIGHUP`` logs it again).  Reading never blocks: a FIFO or a device put in
the file's place is refused by its type before it is opened (see :mod:`routing._config_file`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Mapping

from routing._config_file import decode_config, read_config_bytes
from routing._engine import Router
from routing.config import Config, parse_config
from routing.errors import ConfigError, ConfigIssue

__all__ = ["ConfigWatcher", "RouterPool"]

logger = logging.getLogger("routing.reload")


class RouterPool:
    """The current router plus the retired ones that still have requests in flight."""

    def __init__(self, router: Router) -> None:
        self.current = router
        self._inflight: dict[Router, int] = {router: 0}
        self._closing: set[asyncio.Task[None]] = set()
        self.generation = 0

    def use(self) -> _Held:
        """The current router, held for the duration of one request (``async with``)."""
        return _Held(self)

    def _release(self, router: Router) -> None:
        left = self._inflight[router] - 1
        self._inflight[router] = left
        if left == 0 and router is not self.current:
            del self._inflight[router]
            self._close_later(router)

    def inflight(self, router: Router | None = None) -> int:
        """Requests in flight on ``router`` (default: the current one)."""
        return self._inflight.get(router if router is not None else self.current, 0)

    def swap(self, router: Router) -> Router:
        """Make ``router`` current (keeping the metrics counters); return the old one.

        The old router is closed now if idle, else when its last request finishes.
        """
        old = self.current
        router.metrics = old.metrics
        self.current = router
        self.generation += 1
        self._inflight.setdefault(router, 0)
        if self._inflight.get(old, 0) == 0:
            self._inflight.pop(old, None)
            self._close_later(old)
        return old

    def _close_later(self, router: Router) -> None:
        task = asyncio.get_running_loop().create_task(router.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close every router (current, retired) and wait for pending closes."""
        routers = list(self._inflight)
        if self.current not in self._inflight:
            routers.append(self.current)
        self._inflight.clear()
        for router in routers:
            await router.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


class _Held:
    """``async with pool.use() as router``: a plain class, cheaper than a generator."""

    __slots__ = ("_pool", "_router")

    def __init__(self, pool: RouterPool) -> None:
        self._pool = pool
        self._router: Router | None = None

    async def __aenter__(self) -> Router:
        pool = self._pool
        router = self._router = pool.current
        pool._inflight[router] = pool._inflight.get(router, 0) + 1
        return router

    async def __aexit__(self, *exc_info: object) -> None:
        router, self._router = self._router, None
        if router is not None:
            self._pool._release(router)


#: What a poll compares: (mtime, size, inode, mode) from ``stat``, or None when it fails.
Fingerprint = tuple[int, int, int, int] | None


def _fingerprint(path: str) -> Fingerprint:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode


def _read(path: str) -> bytes | ConfigError:
    """The file's bytes, or why it cannot be read (never blocks, at most 1 MB)."""
    try:
        return read_config_bytes(path)
    except ConfigError as exc:
        return exc


def _state(content: bytes | ConfigError) -> str:
    """What a reload compares: the bytes' digest, or the reading failure."""
    if isinstance(content, ConfigError):
        return "unreadable: " + str(content)
    return hashlib.sha256(content).hexdigest()


def _one_line(path: str, error: BaseException) -> str:
    """``error`` as one located line: the first issue of a ConfigError (and how many more)."""
    if isinstance(error, ConfigError) and error.issues:
        more = len(error.issues) - 1
        tail = f" (and {more} more: run `routing validate {path}`)" if more else ""
        return f"{error.issues[0]}{tail}"
    text = " ".join(str(error).split()) or "no details"
    return str(ConfigIssue(path, 1, 1, "$", f"{type(error).__name__}: {text[:500]}"))


class ConfigWatcher:
    """Reload ``path`` when it changes (polled) or when :meth:`trigger` is called.

    ``apply`` receives each new valid :class:`Config`.  ``run()`` loops until cancelled.
    """

    def __init__(
        self,
        path: str,
        apply: Callable[[Config], None],
        *,
        environ: Mapping[str, str] | None = None,
        interval: float = 1.0,
    ) -> None:
        self.path = path
        self.apply = apply
        self.environ = environ
        self.interval = interval
        self._wake = asyncio.Event()
        self._force = False
        self._seen = _fingerprint(path)
        self._state = _state(_read(path))
        #: Checks (polls and triggers), reload attempts so far, and how many failed (tests
        #: wait on these).
        self.checks = 0
        self.attempts = 0
        self.failures = 0
        #: The logged line of the last failed attempt; None once a reload succeeds.
        self.last_error: str | None = None
        self.changed = asyncio.Condition()

    def trigger(self) -> None:
        """Reload now (what SIGHUP does), even if the file looks unchanged."""
        self._force = True
        self._wake.set()

    async def run(self) -> None:
        """Poll until cancelled; no failure of one check stops the watching."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            force, self._force = self._force, False
            await self.check(force=force)

    async def check(self, *, force: bool = False) -> bool:
        """Reload if the file changed (or ``force``); True when a new config was applied."""
        self.checks += 1
        seen = _fingerprint(self.path)
        if not force and seen == self._seen:
            return False
        self._seen = seen
        try:
            content = await asyncio.to_thread(_read, self.path)
            state = _state(content)
            if not force and state == self._state:
                return False
            self._state = state
            self.attempts += 1
            if isinstance(content, ConfigError):
                raise content
            config = await asyncio.to_thread(self._parse, content)
            self.apply(config)
        except Exception as exc:  # any failure: keep serving the old config, keep watching
            self.failures += 1
            self._report(_one_line(self.path, exc), force=force)
            applied = False
        else:
            self.last_error = None
            logger.info("config reloaded from %s", self.path)
            applied = True
        async with self.changed:
            self.changed.notify_all()
        return applied

    def _parse(self, content: bytes) -> Config:
        return parse_config(decode_config(content, self.path), file=self.path, environ=self.environ)

    def _report(self, line: str, *, force: bool) -> None:
        if line == self.last_error and not force:
            return  # the same failure again: it was logged already
        self.last_error = line
        logger.error("config reload failed, still serving the previous config: %s", line)
