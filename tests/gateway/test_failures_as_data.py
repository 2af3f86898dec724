"""Failures as data through the gateway: 429, 401, a poisoned request, redirects, down models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from gateway_support import GatewayHandle, chat, config_text, http, set_keys

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]
CHAT = "/v1/chat/completions"


def _chats(fake: Any) -> int:
    return sum(1 for r in fake.requests if r["path"] == CHAT)


def _status(gw: GatewayHandle) -> dict[str, dict[str, Any]]:
    return {row["instance"]: row for row in http("GET", gw.url + "/status").json()["instances"]}


def _pair(
    fake_server: FakeFactory, gateway: GatewayFactory, first_fault: str | None = None
) -> tuple[Any, Any, GatewayHandle]:
    a = fake_server("llamacpp", ["m.gguf"], fault=first_fault)
    b = fake_server("llamacpp", ["m.gguf"])
    return a, b, gateway(config_text({"llamacpp:a": a, "llamacpp:b": b}))


def test_429_fails_over_and_cools_the_instance_down(
    fake_server: FakeFactory, gateway: GatewayFactory
) -> None:
    """A 429 moves the request to the other instance and keeps the first out for Retry-After."""
    a, b, gw = _pair(fake_server, gateway, "error429:30")
    first = chat(gw.url, "m.gguf")
    assert first.status == 200 and first.routed_to == "llamacpp:b"
    assert _chats(a) == 1 and _chats(b) == 1
    second = chat(gw.url, "m.gguf")
    assert second.status == 200 and second.routed_to == "llamacpp:b"
    assert _chats(a) == 1, "a cooling instance is not asked again"
    row = _status(gw)["llamacpp:a"]
    assert row["state"] == "READY" and 25 < row["cooling_down"] <= 30
    assert row["breaker"] == "closed", "a rate limit is no health failure"


def test_429_everywhere_is_429_with_retry_after(
    fake_server: FakeFactory, gateway: GatewayFactory
) -> None:
    """When every instance serving the model is rate-limited the client gets 429 + Retry-After."""
    a = fake_server("llamacpp", ["m.gguf"], fault="error429:7")
    b = fake_server("llamacpp", ["m.gguf"], fault="error429:3")
    gw = gateway(config_text({"llamacpp:a": a, "llamacpp:b": b}))
    for stream in (False, True):
        reply = chat(gw.url, "m.gguf", stream=stream)
        assert reply.status == 429, reply.body
        assert 1 <= int(reply.headers["Retry-After"]) <= 7
        assert reply.json()["error"]["type"] == "rate_limit_error"
    ollama = http(
        "POST",
        gw.url + "/api/chat",
        {"model": "m.gguf", "messages": [{"role": "user", "content": "x"}], "stream": False},
    )
    assert ollama.status == 429 and "Retry-After" in ollama.headers
    assert isinstance(ollama.json()["error"], str)


def test_401_is_misconfigured_502_without_upstream_body(
    fake_server: FakeFactory, gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused key: 502 naming the instance, MISCONFIGURED in status, the key nowhere."""
    keys = set_keys(monkeypatch)
    fake = fake_server("openai", ["gpt-4o-mini"])
    gw = gateway(config_text({"openai:default": fake}))
    assert chat(gw.url, "gpt-4o-mini").status == 200
    fake.set_fault("error401")
    reply = chat(gw.url, "gpt-4o-mini")
    assert reply.status == 502, reply.body
    error = reply.json()["error"]
    assert error["code"] == "backend_misconfigured" and "openai:default" in error["message"]
    assert keys["openai"] not in reply.body.decode()
    assert "Incorrect API key" not in reply.body.decode(), "the upstream body is never relayed"
    row = _status(gw)["openai:default"]
    assert row["state"] == "MISCONFIGURED"
    probes = len(fake.requests)
    after = chat(gw.url, "gpt-4o-mini")
    assert after.status == 503 and keys["openai"] not in after.body.decode()
    assert len(fake.requests) == probes, "MISCONFIGURED is not probed again until reload"


def test_poisoned_request_does_not_take_the_instance_out(
    fake_server: FakeFactory, gateway: GatewayFactory
) -> None:
    """One request's 500 is that request's 502; the next normal requests are served there."""
    fake = fake_server("llamacpp", ["m.gguf"], fault="poison")
    gw = gateway(config_text({"llamacpp:a": fake}))
    poisoned = http(
        "POST",
        gw.url + CHAT,
        {"model": "m.gguf", "messages": [{"role": "user", "content": "POISON please"}]},
    )
    assert poisoned.status == 502, poisoned.body
    for _ in range(3):
        reply = chat(gw.url, "m.gguf")
        assert reply.status == 200 and reply.routed_to == "llamacpp:a"
    assert _status(gw)["llamacpp:a"]["state"] == "READY"


def test_poisoned_request_on_two_instances_marks_neither(
    fake_server: FakeFactory, gateway: GatewayFactory
) -> None:
    """A 500 for one request is tried on the other instance, and marks neither UNHEALTHY."""
    a = fake_server("llamacpp", ["m.gguf"], fault="poison")
    b = fake_server("llamacpp", ["m.gguf"], fault="poison")
    gw = gateway(config_text({"llamacpp:a": a, "llamacpp:b": b}))
    poisoned = http(
        "POST",
        gw.url + CHAT,
        {"model": "m.gguf", "messages": [{"role": "user", "content": "POISON"}]},
    )
    assert poisoned.status == 502
    assert chat(gw.url, "m.gguf").status == 200
    states = {k: r["state"] for k, r in _status(gw).items()}
    assert states == {"llamacpp:a": "READY", "llamacpp:b": "READY"}


def test_redirects_are_never_followed(fake_server: FakeFactory, gateway: GatewayFactory) -> None:
    """A 307 from an upstream is a protocol failure: nothing is sent to its Location."""
    fake = fake_server("llamacpp", ["m.gguf"])
    gw = gateway(config_text({"llamacpp:a": fake}))
    assert chat(gw.url, "m.gguf").status == 200
    fake.set_fault("redirect")
    reply = chat(gw.url, "m.gguf")
    assert reply.status == 502, reply.body
    gw.loop.run(gw.gateway.router.refresh())
    assert _status(gw)["llamacpp:a"]["state"] == "UNHEALTHY"
    assert fake.state()["redirected_hits"] == 0


def test_down_model_is_503_not_404(fake_server: FakeFactory, gateway: GatewayFactory) -> None:
    """A model whose only server went DOWN is 503 (its last list is kept); an unknown one 404."""
    fake = fake_server("llamacpp", ["m.gguf"])
    other = fake_server("llamacpp", ["other.gguf"])
    gw = gateway(config_text({"llamacpp:a": fake, "llamacpp:b": other}))
    assert chat(gw.url, "m.gguf").status == 200
    fake.stop()
    gw.loop.run(gw.gateway.router.refresh())
    down = chat(gw.url, "m.gguf")
    assert down.status == 503, down.body
    assert down.json()["error"]["code"] == "no_ready_instance"
    candidates = {c["instance"]: c for c in down.json()["error"]["candidates"]}
    assert candidates["llamacpp:a"]["state"] == "DOWN"
    assert candidates["llamacpp:a"]["models"] == ["m.gguf"]
    assert chat(gw.url, "nobody-serves-this.gguf").status == 404
