"""pytest fixtures serving fakes on free ports (registered through the ``pytest11`` entry point).

``fake_server(kind, models=None, **options)`` starts a fake and returns a
:class:`~fake_servers.sync.FakeServerHandle`; ``fake_fleet(specs)`` starts a fleet and returns
a :class:`~fake_servers.sync.FleetHandle`. Both work from plain synchronous tests: the servers
run in one background event loop per session. At teardown every server started by the test
is stopped and its ``check()`` re-raises any exception raised inside its handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from fake_servers.fleet import ServerSpec
from fake_servers.sync import FakeServerHandle, FleetHandle, LoopThread

FakeServerFactory = Callable[..., FakeServerHandle]
FakeFleetFactory = Callable[[Iterable[ServerSpec | Mapping[str, Any]]], FleetHandle]


@pytest.fixture(scope="session")
def fake_loop() -> Iterator[LoopThread]:
    """The background event loop that serves every fake of the session."""
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture
def fake_server(fake_loop: LoopThread) -> Iterator[FakeServerFactory]:
    """Factory: ``fake_server("llamacpp", ["a.gguf"], fault="hang")`` → a running fake."""
    started: list[FakeServerHandle] = []

    def factory(kind: str, models: Sequence[str] | None = None, **options: Any) -> FakeServerHandle:
        handle = FakeServerHandle.start_new(fake_loop, kind, models, **options)
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.stop()
    for handle in started:
        handle.check()


@pytest.fixture
def fake_fleet(fake_loop: LoopThread) -> Iterator[FakeFleetFactory]:
    """Factory: ``fake_fleet([{"name": "a", "kind": "ollama"}, ...])`` → a running fleet."""
    started: list[FleetHandle] = []

    def factory(specs: Iterable[ServerSpec | Mapping[str, Any]]) -> FleetHandle:
        handle = FleetHandle.start_new(fake_loop, specs)
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.stop()
    for handle in started:
        handle.check()
