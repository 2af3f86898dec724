"""Warm beats cold in every strategy: a llama.cpp router-mode server (or an Ollama) that
lists the model but has it unloaded, declared first, never gets a request while another
candidate has the model loaded; a cold choice says ``cold: must load`` in its trace."""

from __future__ import annotations

import asyncio

import pytest
from strategies_support import (
    MODEL,
    FakeClock,
    answered_port,
    body,
    chats,
    config,
    run,
    start,
    stop_all,
    until,
)

from routing._engine import Router
from routing._strategies import Strategy

R, S, T = "llamacpp:router", "llamacpp:single", "llamacpp:single2"
OTHER = "other.gguf"


@pytest.mark.parametrize("strategy", [s.value for s in Strategy])
def test_warm_single_server_beats_cold_router_mode(strategy: str) -> None:
    """Router mode with the model unloaded declared BEFORE a server that has it loaded:
    every request (12, with 12 sessions) goes to the warm one, the router-mode server
    loads nothing and gets no chat, and its trace entry says `cold: must load`."""

    async def scenario() -> None:
        cold = await start("llamacpp", [MODEL, OTHER], router_mode=True, loaded=[OTHER])
        warm = await start("llamacpp", [MODEL])
        try:
            async with Router(
                config({R: cold, S: warm}, strategy=strategy), clock=FakeClock()
            ) as router:
                done = [await router.complete(body(), session=f"s{i}") for i in range(12)]
            assert {d.decision.instance for d in done} == {S}
            assert {answered_port(d.reply) for d in done} == {warm.port}
            assert cold.state()["loads"] == 0 and chats(cold) == 0
            trace = {c.instance: c for c in done[0].decision.trace}
            assert trace[R].why.startswith("also serves it (cold: must load")
            assert f"{S} has the model loaded" in trace[R].why
            assert trace[R].loaded == (OTHER,) and trace[S].loaded == (MODEL,)
            assert "loaded" in done[0].decision.reason
        finally:
            await stop_all([cold, warm])

    run(scenario())


def test_warm_beats_cold_even_when_busy() -> None:
    """least-busy: a warm server with three requests held open still beats an idle cold
    one (a busy warm server answers sooner than a load; never a load while warm exists)."""

    async def scenario() -> None:
        cold = await start("llamacpp", [MODEL, OTHER], router_mode=True, loaded=[OTHER])
        warm = await start("llamacpp", [MODEL])
        try:
            async with Router(
                config({R: cold, S: warm}, strategy="least-busy"), clock=FakeClock()
            ) as router:
                await router.refresh()
                warm.hold()
                held = [asyncio.create_task(router.complete(body())) for _ in range(3)]
                await until(lambda: router.inflight(S) == 3)
                decision = await router.resolve(model=MODEL)
                warm.hold(False)
                await asyncio.gather(*held)
            assert decision.instance == S and decision.alternatives == (R,)
            assert cold.state()["loads"] == 0
        finally:
            await stop_all([cold, warm])

    run(scenario())


def test_all_cold_goes_to_a_cold_one_and_says_so() -> None:
    """With no warm candidate the router-mode server is chosen, the decision says
    `cold: must load`, the fake loads the model once, and the next probe sees it loaded."""

    async def scenario() -> None:
        cold = await start("llamacpp", [MODEL, OTHER], router_mode=True, loaded=[OTHER])
        try:
            async with Router(config({R: cold}), clock=FakeClock()) as router:
                first = await router.complete(body())
                await router.refresh()
                second = await router.complete(body())
            assert first.decision.instance == R and "cold: must load" in first.decision.reason
            assert first.reply["model"] == MODEL
            assert cold.state()["loads"] == 1
            assert "cold" not in second.decision.reason
            assert MODEL in {c.instance: c for c in second.decision.trace}[R].loaded
        finally:
            await stop_all([cold])

    run(scenario())


def test_loading_beats_unloaded() -> None:
    """A router-mode server already loading the model beats one that would have to start
    loading it (no new load is caused); its trace says `cold: loading`."""

    async def scenario() -> None:
        unloaded = await start("llamacpp", [MODEL, OTHER], router_mode=True)
        loading = await start("llamacpp", [MODEL, OTHER])
        loading.set_router_mode(loading=[MODEL])
        try:
            async with Router(
                config({R: unloaded, S: loading}, strategy="round-robin"), clock=FakeClock()
            ) as router:
                done = await router.complete(body())
            assert done.decision.instance == S and "cold: loading" in done.decision.reason
            assert unloaded.state()["loads"] == loading.state()["loads"] == 0
        finally:
            await stop_all([unloaded, loading])

    run(scenario())


def test_model_loaded_elsewhere_moves_traffic_back() -> None:
    """When the warm server goes down, the cold one takes the request (it must load);
    once the warm one is back and probed, traffic returns to it."""

    async def scenario() -> None:
        cold = await start("llamacpp", [MODEL, OTHER], router_mode=True, loaded=[OTHER])
        warm = await start("llamacpp", [MODEL])
        try:
            async with Router(config({R: cold, S: warm}), clock=FakeClock()) as router:
                assert (await router.complete(body())).decision.instance == S
                await warm.stop()
                await router.refresh()
                assert (await router.complete(body())).decision.instance == R
                assert cold.state()["loads"] == 1
                await warm.start()
                cold.set_router_mode(loaded=[OTHER])  # the router server evicted it again
                await router.refresh()
                assert (await router.complete(body())).decision.instance == S
                assert cold.state()["loads"] == 1
        finally:
            await stop_all([cold, warm])

    run(scenario())


@pytest.mark.parametrize("strategy", [s.value for s in Strategy])
def test_ollama_running_model_beats_a_listed_one(strategy: str) -> None:
    """Ollama: an instance whose /api/ps lacks the model (declared first) loses to one
    running it; no load is caused on the cold one."""

    async def scenario() -> None:
        cold = await start("ollama", ["llama3", "phi3"], loaded=["phi3"])
        warm = await start("ollama", ["llama3"], loaded=["llama3"])
        try:
            async with Router(
                config({"ollama:cold": cold, "ollama:warm": warm}, strategy=strategy),
                clock=FakeClock(),
            ) as router:
                done = [
                    await router.complete(body(model="llama3"), session=f"s{i}") for i in range(8)
                ]
            assert {d.decision.instance for d in done} == {"ollama:warm"}
            assert cold.state()["loads"] == 0 and chats(cold) == 0
            why = {c.instance: c.why for c in done[0].decision.trace}["ollama:cold"]
            assert "cold: must load" in why
        finally:
            await stop_all([cold, warm])

    run(scenario())


def test_two_warm_and_one_cold_spread_only_over_warm_for_sticky() -> None:
    """sticky: sessions whose hash would pick the cold server go to a warm one instead;
    each session still stays on one instance."""

    async def scenario() -> None:
        cold = await start("llamacpp", [MODEL, OTHER], router_mode=True)
        warm = [await start("llamacpp", [MODEL]) for _ in range(2)]
        try:
            async with Router(
                config({R: cold, S: warm[0], T: warm[1]}, strategy="sticky"), clock=FakeClock()
            ) as router:
                places: dict[str, set[str]] = {}
                for _ in range(2):
                    for i in range(20):
                        d = await router.complete(body(), session=f"conv-{i}")
                        places.setdefault(f"conv-{i}", set()).add(d.decision.instance)
            assert all(len(p) == 1 for p in places.values())
            assert {k for p in places.values() for k in p} == {S, T}
            assert cold.state()["loads"] == 0
        finally:
            await stop_all([cold, *warm])

    run(scenario())
