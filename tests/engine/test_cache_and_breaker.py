"""Probe cache (TTL, stale-while-revalidate, single flight) and the circuit breaker."""

from __future__ import annotations

import asyncio

from support import FakeClock, config, provider, run

from fake_servers import start_fake
from routing._decision import State
from routing._engine import Router
from routing._health import Breaker
from routing.config import BreakerSettings
from routing.errors import BackendRejected, BackendUnavailable


def test_breaker_opens_after_failures_and_half_open_probe_decides() -> None:
    """The breaker opens after N failures, allows one half-open probe, doubles its backoff."""
    b = Breaker(BreakerSettings(failures=2, backoff=1.0, max_backoff=3.0))
    b.failure(0.0)
    assert b.state == "closed" and b.allows_probe(0.0)
    b.failure(0.0)
    assert b.state == "open" and not b.allows_probe(0.5)
    assert b.allows_probe(1.0) and b.state == "half-open"
    assert not b.allows_probe(1.0)  # only one half-open probe
    b.failure(1.0)
    assert b.state == "open" and b.open_until == 3.0  # backoff doubled to 2
    assert b.allows_probe(3.0)
    b.failure(3.0)
    assert b.open_until == 6.0  # capped at max_backoff 3
    assert b.allows_probe(6.0)
    b.success()
    assert b.state == "closed" and b.failures == 0


def test_five_hundred_concurrent_resolves_send_one_probe() -> None:
    """Single flight: 500 simultaneous cold resolves cause one /health and one /v1/models."""

    async def scenario() -> None:
        fake = await start_fake("llamacpp", ["m.gguf"])
        try:
            cfg = config(provider("llamacpp", "openai", a=fake.port))
            async with Router(cfg) as router:
                decisions = await asyncio.gather(
                    *(router.resolve(model="m.gguf") for _ in range(500))
                )
                assert {d.instance for d in decisions} == {"llamacpp:a"}
            assert [r["path"] for r in fake.requests] == ["/health", "/v1/models"]
        finally:
            await fake.stop()

    run(scenario())


def test_stale_ready_result_is_served_while_refreshing() -> None:
    """After the TTL a READY result is still used at once, and a background probe refreshes it."""

    async def scenario() -> None:
        fake = await start_fake("llamacpp", ["m.gguf"])
        clock = FakeClock()
        try:
            cfg = config(provider("llamacpp", "openai", a=fake.port))
            async with Router(cfg, clock=clock) as router:
                await router.resolve(model="m.gguf")
                assert len(fake.requests) == 2
                await router.resolve(model="m.gguf")  # fresh: no probe
                assert len(fake.requests) == 2
                clock.advance(6)
                fake.set_loading(True)
                d = await router.resolve(model="m.gguf")  # stale READY served
                assert d.instance == "llamacpp:a"
                await router.refresh()  # let the background refresh land
                assert router.status()[0]["state"] == State.LOADING
        finally:
            await fake.stop()

    run(scenario())


def test_request_failure_marks_instance_and_breaker_stops_probing() -> None:
    """report_failure takes an instance out at once; an open breaker sends no probes."""

    async def scenario() -> None:
        a = await start_fake("llamacpp", ["m.gguf"])
        b = await start_fake("llamacpp", ["m.gguf"])
        clock = FakeClock()
        try:
            cfg = config(
                "  llamacpp:\n    api: openai\n    instances:\n"
                f"      a: {{port: {a.port}}}\n      b: {{port: {b.port}}}\n",
                extra="  breaker: {failures: 3, backoff: 30, max_backoff: 60}\n",
            )
            async with Router(cfg, clock=clock) as router:
                assert (await router.resolve(model="m.gguf")).instance == "llamacpp:a"
                router.report_failure("llamacpp:a", BackendRejected("bad request", instance="x"))
                assert (await router.resolve(model="m.gguf")).instance == "llamacpp:a"
                for _ in range(3):
                    router.report_failure(
                        "llamacpp:a", BackendUnavailable("refused", instance="llamacpp:a")
                    )
                d = await router.resolve(model="m.gguf")
                assert d.instance == "llamacpp:b"
                assert d.trace[0].state == State.DOWN
                status = {s["instance"]: s for s in router.status()}
                assert status["llamacpp:a"]["breaker"] == "open"
                before = len(a.requests)
                clock.advance(6)  # TTL over, but inside the 30 s backoff: no probe of a
                assert (await router.resolve(model="m.gguf")).instance == "llamacpp:b"
                assert len(a.requests) == before
                clock.advance(30)  # backoff over: one half-open probe brings it back
                assert (await router.resolve(model="m.gguf")).instance == "llamacpp:a"
                assert router.status()[0]["breaker"] == "closed"
        finally:
            await a.stop()
            await b.stop()

    run(scenario())
