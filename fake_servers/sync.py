"""Fakes for synchronous code: an event loop in a background thread and blocking handles.

```python
with LoopThread() as loop:
    fake = FakeServerHandle.start_new(loop, "llamacpp", ["a.gguf"])
    requests.get(fake.url + "/health")
    fake.stop()
```
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from fake_servers._core import Fault, LoggedRequest
from fake_servers._server import FakeServer
from fake_servers.fleet import Fleet, ServerSpec

T = TypeVar("T")

_TIMEOUT = 30.0  # seconds: upper bound for any start/stop, so a bug cannot hang a test run


class LoopThread:
    """An asyncio event loop running in a daemon thread, closed cleanly by :meth:`close`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fake-servers-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = _TIMEOUT) -> T:
        """Run ``coro`` in the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` in the loop's thread and return its result."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def close(self) -> None:
        """Stop the loop, finish pending tasks and close it."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(_TIMEOUT)

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FakeServerHandle:
    """Blocking control of a :class:`FakeServer` served by a :class:`LoopThread`."""

    def __init__(self, loop: LoopThread, server: FakeServer) -> None:
        self.loop = loop
        self.server = server

    @classmethod
    def start_new(
        cls,
        loop: LoopThread,
        kind: str,
        models: Sequence[str] | None = None,
        **options: Any,
    ) -> FakeServerHandle:
        """Create and start a fake of ``kind`` (``options`` as for :class:`FakeServer`)."""
        handle = cls(loop, loop.call(lambda: FakeServer(kind, models, **options)))
        return handle.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.server.url

    @property
    def port(self) -> int:
        """The bound port."""
        return self.server.port

    @property
    def kind(self) -> str:
        """The kind of server faked."""
        return self.server.kind

    @property
    def models(self) -> list[str]:
        """The models served."""
        return list(self.server.models)

    @property
    def requests(self) -> list[LoggedRequest]:
        """A snapshot of the request log."""
        return self.loop.call(lambda: list(self.server.requests))

    def set_fault(self, fault: str | Fault | None) -> None:
        """Switch fault at run time."""
        self.loop.call(lambda: self.server.set_fault(fault))

    def set_tool_calls(self, count: int) -> None:
        """Answer every request offering tools with ``count`` tool calls (0: on CALL_TOOLS)."""
        self.loop.call(lambda: self.server.set_tool_calls(count))

    def state(self) -> dict[str, Any]:
        """The ``GET /_fake/state`` document (e.g. ``redirected_hits``)."""
        return self.loop.call(self.server.state)

    def set_loading(self, loading: bool) -> None:
        """Pretend to load (503) or stop pretending."""
        self.loop.call(lambda: self.server.set_loading(loading))

    def set_loaded(self, models: Sequence[str]) -> None:
        """Which models are loaded (Ollama ``/api/ps``, llama.cpp router mode's status)."""
        self.loop.call(lambda: self.server.set_loaded(models))

    def set_router_mode(
        self,
        enabled: bool = True,
        *,
        loaded: Sequence[str] | None = None,
        loading: Sequence[str] = (),
        models_max: int = 0,
    ) -> None:
        """llama.cpp router mode with ``loaded`` models loaded (default none); see
        :meth:`FakeServer.set_router_mode`."""
        self.loop.call(
            lambda: self.server.set_router_mode(
                enabled, loaded=loaded, loading=loading, models_max=models_max
            )
        )

    def set_busy(self, busy: int, slots: int | None = None) -> None:
        """Report ``busy`` slots processing (of ``slots``) in llama.cpp's ``/slots``."""
        self.loop.call(lambda: self.server.set_busy(busy, slots))

    def hold(self, held: bool = True) -> None:
        """Hold llama.cpp chat requests open until ``hold(False)``."""
        self.loop.call(lambda: self.server.hold(held))

    def clear(self) -> None:
        """Forget the request log and recorded errors."""
        self.loop.call(self.server.clear)

    def check(self) -> None:
        """Re-raise the first exception raised inside a handler, if any."""
        self.loop.call(self.server.check)

    def start(self) -> FakeServerHandle:
        """Start (or restart, on the same port) the server."""
        self.loop.run(self.server.start())
        return self

    def stop(self) -> None:
        """Stop the server (a no-op when it is not running)."""
        self.loop.run(self.server.stop())

    def __repr__(self) -> str:
        return f"<FakeServerHandle {self.server!r}>"


class FleetHandle:
    """Blocking control of a :class:`Fleet` served by a :class:`LoopThread`."""

    def __init__(self, loop: LoopThread, fleet: Fleet) -> None:
        self.loop = loop
        self.fleet = fleet
        self.handles = {name: FakeServerHandle(loop, s) for name, s in fleet.servers.items()}

    @classmethod
    def start_new(
        cls, loop: LoopThread, specs: Iterable[ServerSpec | Mapping[str, Any]]
    ) -> FleetHandle:
        """Build a fleet from ``specs`` and start all its servers."""
        listed = list(specs)
        handle = cls(loop, loop.call(lambda: Fleet.from_specs(listed)))
        loop.run(handle.fleet.start())
        return handle

    def __getitem__(self, name: str) -> FakeServerHandle:
        return self.handles[name]

    def __len__(self) -> int:
        return len(self.handles)

    @property
    def urls(self) -> dict[str, str]:
        """``{name: url}`` of every server."""
        return self.fleet.urls

    def stop(self) -> None:
        """Stop every server."""
        self.loop.run(self.fleet.stop())

    def check(self) -> None:
        """Re-raise the first handler exception of any server."""
        for handle in self.handles.values():
            handle.check()
