"""Each strategy through :class:`Router` against fakes: first, round-robin, least-busy,
sticky (pinning, spill when down or saturated), with an injected clock and no sleeps."""

from __future__ import annotations

import asyncio
from collections import Counter

from strategies_support import (
    HI,
    MODEL,
    FakeClock,
    answered_port,
    body,
    config,
    hash_order,
    run,
    start,
    stop_all,
    until,
)

from routing._engine import Router

A, B, C = "llamacpp:a", "llamacpp:b", "llamacpp:c"


def test_first_sends_everything_to_the_first_declared() -> None:
    """first: every request goes to the first instance in declaration order."""

    async def scenario() -> None:
        fakes = [await start("llamacpp", [MODEL]) for _ in range(3)]
        try:
            async with Router(
                config(dict(zip((A, B, C), fakes, strict=True))), clock=FakeClock()
            ) as router:
                ports = [answered_port((await router.complete(body())).reply) for _ in range(6)]
                decision = await router.resolve(model=MODEL)
            assert ports == [fakes[0].port] * 6
            assert decision.instance == A and "first in declaration order" in decision.reason
        finally:
            await stop_all(fakes)

    run(scenario())


def test_round_robin_spreads_evenly() -> None:
    """round-robin: 30 requests over three instances are 10 each, in rotation."""

    async def scenario() -> None:
        fakes = [await start("llamacpp", [MODEL]) for _ in range(3)]
        try:
            cfg = config(dict(zip((A, B, C), fakes, strict=True)), strategy="round-robin")
            async with Router(cfg, clock=FakeClock()) as router:
                ports = [answered_port((await router.complete(body())).reply) for _ in range(30)]
            assert Counter(ports) == {f.port: 10 for f in fakes}
            assert ports[:3] == [f.port for f in fakes] and ports[3:6] == ports[:3]
        finally:
            await stop_all(fakes)

    run(scenario())


def test_round_robin_rotates_over_the_warm_ones_only() -> None:
    """round-robin never rotates onto an instance that would have to load the model."""

    async def scenario() -> None:
        cold = await start(
            "llamacpp", [MODEL, "other.gguf"], router_mode=True, loaded=["other.gguf"]
        )
        warm = [await start("llamacpp", [MODEL]) for _ in range(2)]
        try:
            cfg = config({A: cold, B: warm[0], C: warm[1]}, strategy="round-robin")
            async with Router(cfg, clock=FakeClock()) as router:
                ports = [answered_port((await router.complete(body())).reply) for _ in range(8)]
            assert Counter(ports) == {warm[0].port: 4, warm[1].port: 4}
            assert cold.state()["loads"] == 0
        finally:
            await stop_all([cold, *warm])

    run(scenario())


def test_least_busy_follows_in_flight_counts() -> None:
    """least-busy: with two requests held open on a, the next goes to b; requests sent
    while all are held alternate; once answered, a (first declared) leads again."""

    async def scenario() -> None:
        a, b = await start("llamacpp", [MODEL]), await start("llamacpp", [MODEL])
        try:
            async with Router(
                config({A: a, B: b}, strategy="least-busy"), clock=FakeClock()
            ) as router:
                await router.refresh()
                a.hold()
                held = [asyncio.create_task(router.complete(body(), provider=A)) for _ in range(2)]
                await until(lambda: router.inflight(A) == 2)
                decision = await router.resolve(model=MODEL)
                assert decision.instance == B
                trace = {c.instance: c for c in decision.trace}
                assert (trace[A].inflight, trace[B].inflight) == (2, 0)
                assert "2 in flight" in trace[A].why and "least busy" in trace[B].why
                b.hold()
                more = []
                for n in range(1, 5):  # each starts once the previous one is in flight
                    more.append(asyncio.create_task(router.complete(body())))
                    await until(lambda n=n: router.inflight(A) + router.inflight(B) == 2 + n)
                assert (router.inflight(A), router.inflight(B)) == (3, 3)
                a.hold(False)
                b.hold(False)
                replies = await asyncio.gather(*held, *more)
                assert all(r.reply["choices"] for r in replies)
                assert (router.inflight(A), router.inflight(B)) == (0, 0)
                assert (await router.resolve(model=MODEL)).instance == A
        finally:
            await stop_all([a, b])

    run(scenario())


def test_least_busy_reads_what_the_server_reports() -> None:
    """least-busy counts load the router did not send: a server reporting 3 busy slots
    (/slots) loses to an idle one, and is preferred again once it reports 0."""

    async def scenario() -> None:
        a, b = await start("llamacpp", [MODEL]), await start("llamacpp", [MODEL])
        try:
            async with Router(
                config({A: a, B: b}, strategy="least-busy"), clock=FakeClock()
            ) as router:
                a.set_busy(3)
                decision = await router.resolve(model=MODEL)
                assert decision.instance == B
                why = {c.instance: c.why for c in decision.trace}[A]
                assert "server reports 3 busy of 4 slots" in why
                status = {row["instance"]: row for row in router.status()}
                assert (status[A]["server_busy"], status[A]["slots"]) == (3, 4)
                a.set_busy(0)
                await router.refresh()
                assert (await router.resolve(model=MODEL)).instance == A
                assert any(r["path"] == "/slots" for r in a.requests)
        finally:
            await stop_all([a, b])

    run(scenario())


def test_sticky_pins_each_session_and_spreads_sessions() -> None:
    """sticky: each X-Session-ID always lands on its rendezvous-hash instance, and 30
    sessions use all three instances."""

    async def scenario() -> None:
        fakes = dict(
            zip((A, B, C), [await start("llamacpp", [MODEL]) for _ in range(3)], strict=True)
        )
        port_of = {f.port: k for k, f in fakes.items()}
        try:
            async with Router(config(fakes, strategy="sticky"), clock=FakeClock()) as router:
                seen: dict[str, set[str]] = {}
                for turn in range(2):
                    for i in range(30):
                        s = f"session-{i}"
                        done = await router.complete(body(), session=s)
                        seen.setdefault(s, set()).add(port_of[answered_port(done.reply)])
                        assert done.decision.instance == hash_order(f"h:{s}", list(fakes))[0]
                        if turn == 0 and i == 0:
                            assert "session's instance (sticky)" in done.decision.reason
            assert all(len(v) == 1 for v in seen.values())
            assert {k for v in seen.values() for k in v} == set(fakes)
        finally:
            await stop_all(list(fakes.values()))

    run(scenario())


def test_sticky_keys_on_user_then_on_the_conversation() -> None:
    """Without X-Session-ID the request's `user` keys the session, else the system prompt
    and first user message: a conversation stays on one instance as it grows."""

    async def scenario() -> None:
        fakes = dict(
            zip((A, B, C), [await start("llamacpp", [MODEL]) for _ in range(3)], strict=True)
        )
        try:
            async with Router(config(fakes, strategy="sticky"), clock=FakeClock()) as router:
                for user in ("alice", "bob", "carol"):
                    done = await router.complete(body(user=user))
                    assert done.decision.instance == hash_order(f"u:{user}", list(fakes))[0]
                for conv in range(6):
                    messages = [
                        {"role": "system", "content": f"You are agent {conv}."},
                        {"role": "user", "content": f"Task {conv}: begin."},
                    ]
                    places = set()
                    for turn in range(4):
                        done = await router.complete(body(messages))
                        places.add(done.decision.instance)
                        messages += [
                            {"role": "assistant", "content": f"step {turn}"},
                            {"role": "user", "content": f"next {turn}"},
                        ]
                    assert len(places) == 1, f"conversation {conv} moved: {places}"
        finally:
            await stop_all(list(fakes.values()))

    run(scenario())


def test_sticky_spills_in_hash_order_when_the_instance_is_down() -> None:
    """The pinned instance stopped: its session is answered by the next in its hash
    order (by failover at once, directly after a probe) and comes back when it is up."""

    async def scenario() -> None:
        fakes = dict(
            zip((A, B, C), [await start("llamacpp", [MODEL]) for _ in range(3)], strict=True)
        )
        session = "pinned-conversation"
        first, second, _ = hash_order(f"h:{session}", list(fakes))
        try:
            async with Router(config(fakes, strategy="sticky"), clock=FakeClock()) as router:
                assert (await router.complete(body(), session=session)).decision.instance == first
                await fakes[first].stop()
                spilled = await router.complete(body(), session=session)
                assert spilled.decision.instance == second and spilled.failovers == 1
                assert answered_port(spilled.reply) == fakes[second].port
                await router.refresh()
                direct = await router.resolve(model=MODEL, session=f"h:{session}")
                assert direct.instance == second
                await fakes[first].start()
                await router.refresh()
                back = await router.complete(body(), session=session)
                assert back.decision.instance == first and back.failovers == 0
        finally:
            await stop_all(list(fakes.values()))

    run(scenario())


def test_sticky_spills_when_the_instance_is_saturated() -> None:
    """A one-slot pinned server with its slot busy keeps the session (a wait beats
    recomputing the prompt elsewhere); with a request already waiting it is saturated: the
    session goes to the next in its hash order (the trace says so) and returns when free."""

    async def scenario() -> None:
        fakes = dict(zip((A, B), [await start("llamacpp", [MODEL]) for _ in range(2)], strict=True))
        session = "h:busy-conversation"
        first, second = hash_order(session, list(fakes))
        pinned = fakes[first]
        try:
            async with Router(config(fakes, strategy="sticky"), clock=FakeClock()) as router:
                pinned.set_busy(0, slots=1)
                await router.refresh()
                pinned.hold()
                held = [asyncio.create_task(router.complete(body(), provider=first))]
                await until(lambda: router.inflight(first) == 1)
                busy = await router.resolve(model=MODEL, session=session)
                assert busy.instance == first
                held.append(asyncio.create_task(router.complete(body(), provider=first)))
                await until(lambda: router.inflight(first) == 2)
                spilled = await router.resolve(model=MODEL, session=session)
                assert spilled.instance == second
                why = {c.instance: c.why for c in spilled.trace}[first]
                assert "2 in flight" in why and "saturated" in why
                pinned.hold(False)
                await asyncio.gather(*held)
                assert (await router.resolve(model=MODEL, session=session)).instance == first
        finally:
            await stop_all(list(fakes.values()))

    run(scenario())


def test_rule_strategy_overrides_the_default() -> None:
    """rules[].strategy applies to its models; others keep defaults.strategy."""

    async def scenario() -> None:
        fakes = [await start("llamacpp", [MODEL, "other.gguf"]) for _ in range(2)]
        rules = (
            '  - match: {model: "shared*"}\n    route: llamacpp\n'
            "    strategy: round-robin\n  - route: llamacpp\n"
        )
        try:
            async with Router(
                config(dict(zip((A, B), fakes, strict=True)), rules=rules), clock=FakeClock()
            ) as router:
                shared = [(await router.resolve(model=MODEL)).instance for _ in range(4)]
                other = [(await router.resolve(model="other.gguf")).instance for _ in range(4)]
            assert shared == [A, B, A, B] and other == [A] * 4
        finally:
            await stop_all(fakes)

    run(scenario())


def test_chat_helper_uses_the_strategy() -> None:
    """router.chat (the library's plain call) is routed by the strategy too."""

    async def scenario() -> None:
        fakes = [await start("llamacpp", [MODEL]) for _ in range(2)]
        try:
            cfg = config(dict(zip((A, B), fakes, strict=True)), strategy="round-robin")
            async with Router(cfg, clock=FakeClock()) as router:
                ports = [
                    answered_port(await router.chat(HI, model=MODEL, max_tokens=4))
                    for _ in range(4)
                ]
            assert Counter(ports) == {fakes[0].port: 2, fakes[1].port: 2}
        finally:
            await stop_all(fakes)

    run(scenario())
