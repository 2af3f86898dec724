"""Failover mechanics with a stub Router and a tiny upstream that notices disconnects."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from routing import _failover
from routing._decision import Decision
from routing._failover import MIN_FAILOVER, Completion, _Attempts, model_matches
from routing._failover import complete as failover_complete
from routing._failover_stream import open_stream
from routing._failover_stream import stream as failover_stream
from routing._metrics import Metrics
from routing.config import Defaults, Instance
from routing.errors import BackendTimeout

HI = {"messages": [{"role": "user", "content": "hi"}], "model": "m"}


class Upstream:
    """An OpenAI-style server streaming forever; ``gone`` is set when its client goes away."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.started = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.started.set()
        try:
            if not body.get("stream"):
                await asyncio.sleep(3600)
            resp = web.StreamResponse()
            resp.content_type = "text/event-stream"
            await resp.prepare(request)
            chunk = {
                "object": "chat.completion.chunk",
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}],
            }
            while True:
                await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
                await asyncio.sleep(0.01)
        except (asyncio.CancelledError, ConnectionResetError):
            self.gone.set()
            raise

    async def __aenter__(self) -> Upstream:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        self.runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self.runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


class StubConfig:
    """Just what failover reads from a Config."""

    def __init__(self, instances: dict[str, Instance], defaults: Defaults) -> None:
        self.instances = instances
        self.defaults = defaults


class StubRouter:
    """The RouterLike interface failover relies on, with a fixed decision."""

    secrets: tuple[str, ...] = ()

    def __init__(
        self,
        ports: list[int],
        *,
        attempt_timeout: float = 5.0,
        deadline: float = 10.0,
        retries: int = 2,
    ) -> None:
        insts = [
            Instance(
                provider="p",
                name=f"i{n}",
                api="openai",
                kind="llamacpp",
                url=f"http://127.0.0.1:{port}",
                request_timeout=attempt_timeout,
            )
            for n, port in enumerate(ports)
        ]
        self.config = StubConfig(
            {i.key: i for i in insts}, Defaults(request_timeout=deadline, retries=retries)
        )
        self.metrics = Metrics()
        self.failures: list[tuple[str, BaseException]] = []
        self.inflight: dict[str, int] = {}
        self.successes: list[str] = []
        self.decision = Decision(
            provider="p",
            instance=insts[0].key,
            base_url=insts[0].base_url,
            api="openai",
            model="m",
            reason="stub",
            requested_model="m",
            alternatives=tuple(i.key for i in insts[1:]),
        )
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def resolve(
        self,
        provider: str | None = None,
        model: str | None = None,
        *,
        session: object = None,
        operation: str = "chat",
    ) -> Decision:
        return self.decision

    def begin(self, key: str) -> None:
        self.inflight[key] = self.inflight.get(key, 0) + 1

    def end(self, key: str) -> None:
        self.inflight[key] -= 1

    def reroute(self, decision: Decision, key: str) -> Decision:
        inst = self.config.instances[key]
        return dataclasses.replace(
            decision,
            provider=inst.provider,
            instance=key,
            base_url=inst.base_url,
            alternatives=tuple(k for k in decision.alternatives if k != key),
        )

    def report_failure(self, key: str, error: BaseException) -> None:
        self.failures.append((key, error))

    def report_success(self, key: str) -> None:
        self.successes.append(key)

    def report_unsupported(self, key: str, operation: str) -> None:
        self.failures.append((key, RuntimeError(f"not_supported: {operation}")))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def run(coro: Any) -> Any:
    """Run ``coro`` in a fresh loop, bounded."""
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_cancelled_stream_consumer_cancels_upstream() -> None:
    """Cancelling the task reading a stream closes the upstream connection."""

    async def go() -> None:
        async with Upstream() as up:
            router = StubRouter([up.port])

            async def consume() -> None:
                async for _ in failover_stream(router, HI["messages"], model="m"):
                    pass

            task = asyncio.create_task(consume())
            await up.started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(up.gone.wait(), 5)
            await router.close()

    run(go())


def test_closed_stream_handle_releases_connection() -> None:
    """Closing a handle after one chunk closes the upstream connection (no leak)."""

    async def go() -> None:
        async with Upstream() as up:
            router = StubRouter([up.port])
            handle = await open_stream(router, {**HI, "stream": True})
            first = await handle.__anext__()
            assert first["choices"][0]["delta"]["content"] == "x"
            await handle.aclose()
            await asyncio.wait_for(up.gone.wait(), 5)
            assert router.successes == ["p:i0"]
            assert router.metrics.requests[("p:i0", "m", "closed")] == 1
            await router.close()

    run(go())


def test_cancelled_chat_cancels_upstream() -> None:
    """Cancelling a non-streaming request closes the upstream connection."""

    async def go() -> None:
        async with Upstream() as up:
            router = StubRouter([up.port])
            task = asyncio.create_task(failover_complete(router, HI))
            await up.started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(up.gone.wait(), 5)
            assert router.failures == []  # the caller left; the backend is not to blame
            await router.close()

    run(go())


def test_deadline_bounds_attempts() -> None:
    """Three hanging instances, 0.4 s per attempt, 0.6 s in all: two attempts, a timeout."""

    async def go() -> tuple[StubRouter, BaseException]:
        async with Upstream() as u0, Upstream() as u1, Upstream() as u2:
            router = StubRouter([u0.port, u1.port, u2.port], attempt_timeout=0.4, deadline=0.6)
            try:
                await failover_complete(router, HI)
            except BackendTimeout as exc:
                error: BaseException = exc
            await router.close()
            assert not u2.started.is_set()
            return router, error

    router, error = run(go())
    assert [key for key, _ in router.failures] == ["p:i0", "p:i1"]
    assert isinstance(error, BackendTimeout) and error.instance == "p:i1"


def _clocked(monkeypatch: pytest.MonkeyPatch, now: list[float]) -> None:
    """failover's monotonic clock reads ``now[0]`` (perf_counter stays real)."""
    clock = SimpleNamespace(monotonic=lambda: now[0], perf_counter=time.perf_counter)
    monkeypatch.setattr(_failover, "time", clock)


@pytest.mark.parametrize(
    ("left", "fails_over"),
    [(0.0009, False), (MIN_FAILOVER / 2, False), (0.0, False), (-0.001, False),
     (MIN_FAILOVER + 0.001, True), (0.2, True)],
)  # fmt: skip
def test_no_failover_into_a_sliver_of_the_deadline(
    monkeypatch: pytest.MonkeyPatch, left: float, fails_over: bool
) -> None:
    """An attempt that timed out a sliver before the deadline (its timeout is rounded down to
    whole ms, uvloop's timers count whole ms) is the last: a failover needs MIN_FAILOVER left."""
    now = [1000.0]
    _clocked(monkeypatch, now)
    router = StubRouter([1, 2], attempt_timeout=0.5, deadline=0.5)
    plan = _Attempts(router, router.decision)
    attempts = plan.each()
    failovers, _, inst, _, timeout = next(attempts)
    assert (failovers, inst.key) == (0, "p:i0")
    assert timeout.total is not None and timeout.total <= 0.5
    now[0] = plan.deadline - left  # the first attempt timed out
    second = next(attempts, None)
    assert (second is not None) is fails_over
    if second is not None:
        assert (second[0], second[2].key) == (1, "p:i1")
        assert second[4].total is not None and 0 < second[4].total <= left


def test_a_first_attempt_is_made_with_any_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deadline shorter than MIN_FAILOVER still gets its first attempt."""
    now = [1000.0]
    _clocked(monkeypatch, now)
    router = StubRouter([1, 2], attempt_timeout=0.005, deadline=0.005)
    failovers, _, inst, _, timeout = next(_Attempts(router, router.decision).each())
    assert (failovers, inst.key) == (0, "p:i0")
    assert timeout.total is not None and 0 < timeout.total <= 0.005


def test_completion_records_attempts(fake_server: Any) -> None:
    """A refused first instance and a working second: attempts, failovers and reports."""
    fake = fake_server("llamacpp", ["m"])

    async def go() -> tuple[StubRouter, Completion]:
        dead = Upstream()
        async with dead:
            port = dead.port
        router = StubRouter([port, fake.port])
        done = await failover_complete(router, HI)
        await router.close()
        return router, done

    router, done = run(go())
    assert done.failovers == 1
    assert [(k, type(e).__name__) for k, e in done.attempts] == [
        ("p:i0", "BackendUnavailable"),
        ("p:i1", "NoneType"),
    ]
    assert router.successes == ["p:i1"]
    assert router.metrics.failovers[("p:i0", "refused")] == 1
    assert router.metrics.requests[("p:i1", "m", "ok")] == 1


@pytest.mark.parametrize(
    ("routed", "reported", "aliases", "same"),
    [
        ("llama3", "llama3:latest", {}, True),
        ("Qwen.gguf", "/models/qwen.gguf", {}, True),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", {}, True),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku-20241022", {}, True),
        ("coder", "qwen-coder.gguf", {"coder": "qwen-coder.gguf"}, True),
        ("m.gguf", "wrong-m.gguf", {}, False),
        ("gpt-4o", "gpt-4o-mini", {}, False),
        ("claude-3-5-sonnet", "claude-3-opus-20240229", {}, False),
    ],
)
def test_model_matches(routed: str, reported: str, aliases: dict[str, str], same: bool) -> None:
    """Model names are compared after normalising tags, paths, aliases and snapshots."""
    assert model_matches(routed, reported, aliases) is same
