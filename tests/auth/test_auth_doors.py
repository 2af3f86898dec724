"""Every auth outcome on every door, over raw HTTP: 401 without or with an unknown key, 403
for a model outside the key's globs, 429 over a limit (with Retry-After), each in the door's
own error shape; Bearer and x-api-key both accepted everywhere."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from auth_support import (
    AUTH,
    BODY_DOORS,
    DOORS,
    MODEL,
    OTHER,
    Clock,
    Door,
    bearer,
    error_code,
    expected_code,
    set_auth_env,
    x_api_key,
)
from gateway_support import GatewayHandle, Reply, config_text, http, wait_until
from raw_http import exchange

from routing._gateway_auth import GATEKEEPER, OPEN_PATHS

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]
AUTH_ERRORS = (401, 403, 429)


@dataclass
class Rig:
    """A gateway with the test keys over one llama.cpp fake, and its clock."""

    gw: GatewayHandle
    keys: dict[str, str]
    clock: Clock
    fake: Any

    def call(
        self, door: Door, headers: dict[str, str] | None = None, model: str | None = MODEL
    ) -> Reply:
        """One request through ``door``."""
        return http(door.method, self.gw.url + door.path, door.with_model(model), headers)

    def has_route(self, door: Door) -> bool:
        """True when the gateway serves ``door`` (the Anthropic door may not be built yet)."""
        return any(r.canonical == door.path for r in self.gw.gateway.app.router.resources())


@pytest.fixture
def rig(
    fake_server: FakeFactory, gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Rig]:
    """The gateway of these tests; a first request warms the probe cache."""
    keys = set_auth_env(monkeypatch)
    fake = fake_server("llamacpp", [MODEL, OTHER])
    clock = Clock()
    gw = gateway(config_text({"llamacpp:a": fake}, extra=AUTH), clock=clock)
    yield Rig(gw, keys, clock, fake)


def _served(rig: Rig, door: Door, reply: Reply) -> None:
    """The request got past auth: 200 where the door exists."""
    assert reply.status not in AUTH_ERRORS, reply.body
    if rig.has_route(door):
        assert reply.status == 200, reply.body


@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.name)
def test_missing_key_is_401(rig: Rig, door: Door) -> None:
    """No key: 401 in the door's shape, WWW-Authenticate set, saying how to send one."""
    reply = rig.call(door)
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    message, code = error_code(door, reply.json())
    assert "Authorization: Bearer" in message and "x-api-key" in message
    assert code == expected_code(door, "missing_api_key", "authentication_error")


@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.name)
@pytest.mark.parametrize("header", [bearer, x_api_key], ids=["bearer", "x-api-key"])
def test_unknown_key_is_401(rig: Rig, door: Door, header: Callable[[str], dict[str, str]]) -> None:
    """An unknown key (or the admin key, which is not a client key) is 401 on every door."""
    for wrong in ("rk-nobody-0123456789abcdef", rig.keys["alice"] + "x", rig.keys["admin"]):
        reply = rig.call(door, header(wrong))
        assert reply.status == 401
        message, code = error_code(door, reply.json())
        assert wrong not in message and wrong.encode() not in reply.body
        assert code == expected_code(door, "invalid_api_key", "authentication_error")


@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.name)
@pytest.mark.parametrize("header", [bearer, x_api_key], ids=["bearer", "x-api-key"])
def test_valid_key_is_served(rig: Rig, door: Door, header: Callable[[str], dict[str, str]]) -> None:
    """A known key in either header is let through on every door."""
    _served(rig, door, rig.call(door, header(rig.keys["bob"])))


def test_scheme_is_case_insensitive_and_either_header_may_hold_the_key(rig: Rig) -> None:
    """`bearer KEY` works; a wrong Bearer beside a right x-api-key is still let in."""
    door = DOORS[0]
    _served(rig, door, rig.call(door, {"Authorization": f"bearer {rig.keys['bob']}"}))
    _served(
        rig,
        door,
        rig.call(
            door, {"Authorization": "Bearer wrong-key-0123456789", "x-api-key": rig.keys["bob"]}
        ),
    )
    assert rig.call(door, {"Authorization": f"Basic {rig.keys['bob']}"}).status == 401


@pytest.mark.parametrize("door", BODY_DOORS, ids=lambda d: d.name)
def test_model_outside_globs_is_403(rig: Rig, door: Door) -> None:
    """alice (qwen*) asking for another model, or for none, gets 403 model_not_allowed."""
    if not rig.has_route(door):
        pytest.skip(f"{door.path} is not served by this gateway yet: the model is read by it")
    for model in (OTHER, None):
        reply = rig.call(door, bearer(rig.keys["alice"]), model=model)
        assert reply.status == 403, reply.body
        message, code = error_code(door, reply.json())
        assert code == expected_code(door, "model_not_allowed", "permission_error")
        assert "alice" in message and "qwen*" in message
    assert not any(
        r["json"] and r["json"].get("model") == OTHER
        for r in rig.fake.requests
        if r["method"] == "POST"
    )
    _served(rig, door, rig.call(door, bearer(rig.keys["alice"])))


@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.name)
def test_requests_per_minute_is_429_until_the_clock_moves(rig: Rig, door: Door) -> None:
    """carol (2/min): two requests pass, the third is 429 with Retry-After, then time heals."""
    key = x_api_key(rig.keys["carol"])
    for _ in range(2):
        assert rig.call(door, key).status not in AUTH_ERRORS
    reply = rig.call(door, key)
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "30"
    message, code = error_code(door, reply.json())
    assert "2 requests per minute" in message
    assert code == expected_code(door, "rate_limit_exceeded", "rate_limit_error")
    rig.clock.advance(29.0)
    assert rig.call(door, key).status == 429
    rig.clock.advance(1.0)
    _served(rig, door, rig.call(door, key))
    assert rig.call(door, key).status == 429
    _served(rig, door, rig.call(door, bearer(rig.keys["bob"])))  # others are not limited


def test_max_concurrent_is_429_on_every_door_while_one_is_in_flight(rig: Rig) -> None:
    """dave (1 at a time) gets 429 on every door while one request hangs, and gets in after it."""
    key = bearer(rig.keys["dave"])
    door = DOORS[0]
    _served(rig, door, rig.call(door, key))
    rig.fake.set_fault("hang")
    replies: list[Reply] = []
    hanging = threading.Thread(target=lambda: replies.append(rig.call(door, key)))
    hanging.start()
    keeper = rig.gw.gateway.app[GATEKEEPER]
    wait_until(lambda: keeper.inflight("dave") == 1, what="dave's request in flight")
    for other in DOORS:
        reply = rig.call(other, key)
        assert reply.status == 429, (other.name, reply.body)
        assert reply.headers["Retry-After"] == "1"
        message, code = error_code(other, reply.json())
        assert "1 requests in flight" in message
        assert code == expected_code(other, "concurrency_limit_exceeded", "rate_limit_error")
    _served(rig, DOORS[1], rig.call(DOORS[1], bearer(rig.keys["bob"])))
    rig.fake.stop()  # the hanging upstream request ends (connection dropped)
    hanging.join(10)
    assert not hanging.is_alive() and replies[0].status >= 500
    assert keeper.inflight("dave") == 0
    assert rig.call(DOORS[1], key).status == 200


def test_every_route_but_healthz_and_the_page_needs_a_key(rig: Rig) -> None:
    """Each route the gateway has, doors added later included, is 401 without a key."""
    checked = []
    for resource in rig.gw.gateway.app.router.resources():
        path = re.sub(r"\{[^}]+\}", "x", resource.canonical)
        for method in sorted({route.method for route in resource} - {"*"}):
            reply = http(method, rig.gw.url + path, b"{}" if method == "POST" else None)
            if path in OPEN_PATHS:
                assert reply.status == 200, (method, path)
            else:
                assert reply.status == 401, (method, path, reply.status)
            checked.append(f"{method} {path}")
    assert {
        "POST /v1/chat/completions",
        "POST /api/chat",
        "GET /status",
        "GET /ui/data",
        "GET /healthz",
        "GET /ui",
    } <= set(checked)


@pytest.mark.parametrize(("key", "first"), [(None, 401), ("bob", 100)])
def test_expect_continue_without_a_key_is_401_before_the_body(
    rig: Rig, key: str | None, first: int
) -> None:
    """`Expect: 100-continue` without a key: 401 at once, never `100 Continue`; with one: 100."""
    body = b'{"model": "qwen-7b.gguf", "messages": [{"role": "user", "content": "hi"}]}'
    auth = f"Authorization: Bearer {rig.keys[key]}\r\n".encode() if key else b""
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
        + auth
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )
    port = int(rig.gw.url.rpartition(":")[2])
    replies = exchange(port, head, body if key else b"").replies
    assert replies[0].status == first
    assert replies[-1].status == (401 if key is None else 200)
