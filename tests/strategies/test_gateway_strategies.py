"""Strategies through the gateway (HTTP, port 0): X-Session-ID, the request's `user`, the
conversation hash; two gateways with one config agree (replicas, no shared state); spill
when the pinned instance is down; round-robin evenly; least-busy with requests held open;
warm over cold; `/status` rows carry loaded / loading / inflight / server_busy / slots."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
from strategies_support import (
    MODEL,
    answered_port,
    body,
    config_text,
    gateway,
    hash_order,
    post,
    run,
    start,
    stop_all,
    until,
)

from fake_servers import FakeServer
from routing._strategies import session_key

A, B, C = "llamacpp:a", "llamacpp:b", "llamacpp:c"
OTHER = "other.gguf"


async def _three() -> dict[str, FakeServer]:
    return dict(zip((A, B, C), [await start("llamacpp", [MODEL]) for _ in range(3)], strict=True))


def test_sticky_session_header_agrees_across_replicas() -> None:
    """Two gateways with the same config send each X-Session-ID to the same instance (its
    rendezvous-hash first), every time; 24 sessions use all three instances."""

    async def scenario() -> None:
        fakes = await _three()
        text = config_text(fakes, strategy="sticky")
        try:
            async with gateway(text) as g1, gateway(text) as g2, aiohttp.ClientSession() as http:
                places: dict[str, set[str | None]] = {}
                for gw in (g1, g2, g1):
                    for i in range(24):
                        s = f"sess-{i}"
                        status, routed, _ = await post(
                            http, gw.url + "/v1/chat/completions", body(), {"X-Session-ID": s}
                        )
                        assert status == 200
                        places.setdefault(s, set()).add(routed)
                assert all(p == {hash_order(f"h:{s}", list(fakes))[0]} for s, p in places.items())
                assert {k for p in places.values() for k in p} == set(fakes)
        finally:
            await stop_all(list(fakes.values()))

    run(scenario())


def test_sticky_user_and_conversation_hash_agree_across_replicas() -> None:
    """Without the header: the request's `user`, else the system prompt and first user
    message, pin a session; a 4-turn conversation alternating between two gateways stays
    on one instance."""

    async def scenario() -> None:
        fakes = await _three()
        text = config_text(fakes, strategy="sticky")
        try:
            async with gateway(text) as g1, gateway(text) as g2, aiohttp.ClientSession() as http:
                for user in ("alice", "bob", "carol", "dave"):
                    routed = {
                        (await post(http, gw.url + "/v1/chat/completions", body(user=user)))[1]
                        for gw in (g1, g2)
                    }
                    assert routed == {hash_order(f"u:{user}", list(fakes))[0]}
                used = set()
                for conv in range(6):
                    messages: list[dict[str, Any]] = [
                        {"role": "system", "content": f"You review module {conv}."},
                        {"role": "user", "content": f"Look at file {conv}.py"},
                    ]
                    expected = hash_order(str(session_key({"messages": messages})), list(fakes))[0]
                    for turn in range(4):
                        gw = (g1, g2)[turn % 2]
                        status, routed_to, reply = await post(
                            http, gw.url + "/v1/chat/completions", body(messages)
                        )
                        assert (status, routed_to) == (200, expected), (conv, turn)
                        assert answered_port(reply) == fakes[expected].port
                        messages += [
                            reply["choices"][0]["message"],
                            {"role": "user", "content": f"and then {turn}?"},
                        ]
                    used.add(expected)
                assert len(used) >= 2
        finally:
            await stop_all(list(fakes.values()))

    run(scenario())


def test_sticky_spill_when_pinned_instance_goes_down() -> None:
    """The pinned instance stopped: the session is answered by the next in its hash order
    (same on both replicas), and returns to it once it is back and probed."""

    async def scenario() -> None:
        fakes = await _three()
        text = config_text(fakes, strategy="sticky")
        first, second, _ = hash_order("h:keep-me", list(fakes))
        headers = {"X-Session-ID": "keep-me"}
        try:
            async with gateway(text) as g1, gateway(text) as g2, aiohttp.ClientSession() as http:
                url1, url2 = g1.url + "/v1/chat/completions", g2.url + "/v1/chat/completions"
                assert (await post(http, url1, body(), headers))[1] == first
                await fakes[first].stop()
                spilled = [await post(http, url, body(), headers) for url in (url1, url2)]
                assert [(s, r) for s, r, _ in spilled] == [(200, second)] * 2
                await fakes[first].start()
                await asyncio.gather(g1.router.refresh(), g2.router.refresh())
                back = [(await post(http, url, body(), headers))[1] for url in (url1, url2)]
                assert back == [first, first]
        finally:
            await stop_all(list(fakes.values()))

    run(scenario())


def test_round_robin_spreads_evenly_through_the_gateway() -> None:
    """round-robin: 12 requests through the gateway reach each of three instances 4 times."""

    async def scenario() -> None:
        fakes = await _three()
        try:
            async with (
                gateway(config_text(fakes, strategy="round-robin")) as gw,
                aiohttp.ClientSession() as http,
            ):
                routed = [
                    (await post(http, gw.url + "/v1/chat/completions", body()))[1]
                    for _ in range(12)
                ]
            assert Counter(routed) == {A: 4, B: 4, C: 4}
        finally:
            await stop_all(list(fakes.values()))

    run(scenario())


def test_least_busy_through_the_gateway_and_status_rows() -> None:
    """least-busy: two requests held open on a (X-Routing-Provider) send the next one to
    b; /status shows a's 2 in flight and its server's 2 busy of 4 slots; once released,
    the counts fall back to 0."""

    async def scenario() -> None:
        a, b = await start("llamacpp", [MODEL]), await start("llamacpp", [MODEL])
        try:
            async with (
                gateway(config_text({A: a, B: b}, strategy="least-busy")) as gw,
                aiohttp.ClientSession() as http,
            ):
                url = gw.url + "/v1/chat/completions"
                await gw.router.refresh()
                a.hold()
                held = [
                    asyncio.create_task(post(http, url, body(), {"X-Routing-Provider": A}))
                    for _ in range(2)
                ]
                await until(lambda: gw.router.inflight(A) == 2)
                status, routed, _ = await post(http, url, body())
                assert (status, routed) == (200, B)
                await gw.router.refresh()
                async with http.get(gw.url + "/status") as resp:
                    rows = {r["instance"]: r for r in (await resp.json())["instances"]}
                assert (rows[A]["inflight"], rows[A]["server_busy"], rows[A]["slots"]) == (2, 2, 4)
                assert (rows[B]["inflight"], rows[B]["server_busy"]) == (0, 0)
                assert rows[A]["loaded"] == [MODEL] and rows[A]["loading"] == []
                a.hold(False)
                assert [r[:2] for r in await asyncio.gather(*held)] == [(200, A)] * 2
                async with http.get(gw.url + "/status") as resp:
                    after = {r["instance"]: r for r in (await resp.json())["instances"]}
                assert after[A]["inflight"] == 0
        finally:
            await stop_all([a, b])

    run(scenario())


def test_warm_over_cold_through_the_gateway_and_status() -> None:
    """Router mode with the model unloaded, declared first: every request of both doors
    goes to the warm server, no load is caused, and /status shows router mode's loaded and
    loading models (and no slots: router mode has none without a model)."""

    async def scenario() -> None:
        cold = await start("llamacpp", [MODEL, OTHER, "third.gguf"])
        cold.set_router_mode(loaded=[OTHER], loading=["third.gguf"])
        warm = await start("llamacpp", [MODEL])
        members = {"llamacpp:router": cold, "llamacpp:single": warm}
        try:
            async with (
                gateway(config_text(members, strategy="least-busy")) as gw,
                aiohttp.ClientSession() as http,
            ):
                routed = [
                    (
                        await post(
                            http, gw.url + "/v1/chat/completions", body(), {"X-Session-ID": f"s{i}"}
                        )
                    )[1]
                    for i in range(6)
                ]
                ollama_door = await post(
                    http,
                    gw.url + "/api/chat",
                    {
                        "model": MODEL,
                        "stream": False,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                )
                async with http.get(gw.url + "/status") as resp:
                    rows = {r["instance"]: r for r in (await resp.json())["instances"]}
            assert routed == ["llamacpp:single"] * 6
            assert ollama_door[:2] == (200, "llamacpp:single")
            assert cold.state()["loads"] == 0
            row = rows["llamacpp:router"]
            assert (row["loaded"], row["loading"]) == ([OTHER], ["third.gguf"])
            assert (row["server_busy"], row["slots"]) == (None, None)
            assert set(row["models"]) == {MODEL, OTHER, "third.gguf"}
            assert rows["llamacpp:single"]["loaded"] == [MODEL]
        finally:
            await stop_all([cold, warm])

    run(scenario())


def test_anthropic_door_metadata_user_id_is_the_session() -> None:
    """The Anthropic door keys sticky on `metadata.user_id`: each user lands where the
    OpenAI door sends the same `user`, and a system + first message conversation where
    the OpenAI door sends the same conversation."""

    async def scenario() -> None:
        fakes = await _three()
        try:
            async with (
                gateway(config_text(fakes, strategy="sticky")) as gw,
                aiohttp.ClientSession() as http,
            ):
                headers = {"anthropic-version": "2023-06-01"}
                for user in ("alice", "bob", "carol", "dave", "erin"):
                    anthropic = await post(
                        http,
                        gw.url + "/v1/messages",
                        {
                            "model": MODEL,
                            "max_tokens": 4,
                            "metadata": {"user_id": user},
                            "messages": [{"role": "user", "content": "hi"}],
                        },
                        headers,
                    )
                    assert anthropic[:2] == (200, hash_order(f"u:{user}", list(fakes))[0])
                for conv in range(4):
                    system, first = f"You are bot {conv}.", f"Question {conv}?"
                    anthropic = await post(
                        http,
                        gw.url + "/v1/messages",
                        {
                            "model": MODEL,
                            "max_tokens": 4,
                            "system": system,
                            "messages": [{"role": "user", "content": first}],
                        },
                        headers,
                    )
                    openai = await post(
                        http,
                        gw.url + "/v1/chat/completions",
                        body(
                            [
                                {"role": "system", "content": system},
                                {"role": "user", "content": first},
                            ]
                        ),
                    )
                    assert anthropic[:2] == openai[:2]
        finally:
            await stop_all(list(fakes.values()))

    run(scenario())


def test_ollama_door_session_header_is_sticky_too() -> None:
    """The Ollama door reads X-Session-ID like the OpenAI door: same session, same place."""

    async def scenario() -> None:
        fakes = await _three()
        try:
            async with (
                gateway(config_text(fakes, strategy="sticky")) as gw,
                aiohttp.ClientSession() as http,
            ):
                for i in range(8):
                    headers = {"X-Session-ID": f"o{i}"}
                    via_openai = await post(http, gw.url + "/v1/chat/completions", body(), headers)
                    via_ollama = await post(
                        http,
                        gw.url + "/api/chat",
                        {
                            "model": MODEL,
                            "stream": False,
                            "messages": [{"role": "user", "content": "hi"}],
                        },
                        headers,
                    )
                    assert via_openai[1] == via_ollama[1] == hash_order(f"h:o{i}", list(fakes))[0]
        finally:
            await stop_all(list(fakes.values()))

    run(scenario())
