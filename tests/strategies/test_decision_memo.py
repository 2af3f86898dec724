"""A decision is made once per state and reused: never across a change of what it is made of
(probe results, in-flight counts, not_supported answers, cooldowns, turning strategies)."""

from __future__ import annotations

from strategies_support import MODEL, FakeClock, config, run, start, stop_all

from routing import _engine
from routing._engine import Router
from routing._operations import Operation
from routing.errors import BackendUnavailable, Reason

A, B = "llamacpp:a", "llamacpp:b"


def test_same_state_same_decision_object() -> None:
    """Nothing changed: the very same Decision comes back, trace and reason included."""

    async def scenario() -> None:
        fakes = [await start("llamacpp", [MODEL]) for _ in range(2)]
        try:
            async with Router(config({A: fakes[0], B: fakes[1]}), clock=FakeClock()) as router:
                first = await router.resolve(model=MODEL)
                again = await router.resolve(model=MODEL)
                assert again is first
                assert first.instance == A and first.alternatives == (B,)
        finally:
            await stop_all(fakes)

    run(scenario())


def test_in_flight_counts_are_never_stale() -> None:
    """Another request in flight: a new decision whose trace and reason show it."""

    async def scenario() -> None:
        fakes = [await start("llamacpp", [MODEL]) for _ in range(2)]
        try:
            cfg = config({A: fakes[0], B: fakes[1]}, strategy="least-busy")
            async with Router(cfg, clock=FakeClock()) as router:
                idle = await router.resolve(model=MODEL)
                router.begin(A)
                busy = await router.resolve(model=MODEL)
                router.end(A)
                idle_again = await router.resolve(model=MODEL)
            assert idle.instance == A and busy.instance == B  # least-busy moved away from A
            assert {c.instance: c.inflight for c in busy.trace} == {A: 1, B: 0}
            assert "1 in flight" in next(c.why for c in busy.trace if c.instance == A)
            assert idle_again is idle  # the same state as before: the same decision
        finally:
            await stop_all(fakes)

    run(scenario())


def test_a_failure_is_seen_by_the_next_decision() -> None:
    """A request failure records a new result: the failed instance is out at once."""

    async def scenario() -> None:
        fakes = [await start("llamacpp", [MODEL]) for _ in range(2)]
        try:
            async with Router(config({A: fakes[0], B: fakes[1]}), clock=FakeClock()) as router:
                assert (await router.resolve(model=MODEL)).instance == A
                router.report_failure(A, BackendUnavailable("refused", instance=A))
                after = await router.resolve(model=MODEL)
            assert after.instance == B
            assert next(c.state for c in after.trace if c.instance == A) == "DOWN"
        finally:
            await stop_all(fakes)

    run(scenario())


def test_not_supported_is_seen_by_the_next_decision() -> None:
    """An instance that answered not_supported for embeddings is skipped for them at once."""

    async def scenario() -> None:
        fakes = [await start("llamacpp", [MODEL]) for _ in range(2)]
        try:
            async with Router(config({A: fakes[0], B: fakes[1]}), clock=FakeClock()) as router:
                embed = Operation.EMBEDDING
                assert (await router.resolve(model=MODEL, operation=embed)).instance == A
                router.report_unsupported(A, embed)
                assert (await router.resolve(model=MODEL, operation=embed)).instance == B
                assert (await router.resolve(model=MODEL)).instance == A  # chat: unaffected
        finally:
            await stop_all(fakes)

    run(scenario())


def test_a_cooldown_ends_with_time() -> None:
    """A 429 cooldown moves requests away, and back once the clock passes its end."""

    async def scenario() -> None:
        fakes = [await start("llamacpp", [MODEL]) for _ in range(2)]
        clock = FakeClock()
        try:
            async with Router(config({A: fakes[0], B: fakes[1]}), clock=clock) as router:
                before = await router.resolve(model=MODEL)
                limited = BackendUnavailable(
                    "429", instance=A, reason=Reason.OVERLOADED, retry_after=5.0, status=429
                )
                router.report_failure(A, limited)
                assert (await router.resolve(model=MODEL)).instance == B
                clock.advance(5.1)
                back = await router.resolve(model=MODEL)
            assert back.instance == A
            assert back is before  # the state is that of before the cooldown again
        finally:
            await stop_all(fakes)

    run(scenario())


def test_round_robin_still_turns() -> None:
    """round-robin decisions are never reused: each takes the next turn."""

    async def scenario() -> None:
        fakes = [await start("llamacpp", [MODEL]) for _ in range(2)]
        try:
            cfg = config({A: fakes[0], B: fakes[1]}, strategy="round-robin")
            async with Router(cfg, clock=FakeClock()) as router:
                chosen = [(await router.resolve(model=MODEL)).instance for _ in range(4)]
            assert chosen == [A, B, A, B]
        finally:
            await stop_all(fakes)

    run(scenario())


def test_the_memo_is_bounded() -> None:
    """Past its bound the memo is emptied, never grown."""

    async def scenario() -> None:
        fakes = [await start("llamacpp", [MODEL])]
        try:
            async with Router(config({A: fakes[0]}), clock=FakeClock()) as router:
                for inflight in range(_engine._DECIDED_MAX + 5):
                    router._busy[A] = inflight  # each count is another state
                    await router.resolve(model=MODEL)
                    assert len(router._decided) <= _engine._DECIDED_MAX
                assert len(router._decided) == 5  # emptied at the bound, then 5 more
        finally:
            await stop_all(fakes)

    run(scenario())
