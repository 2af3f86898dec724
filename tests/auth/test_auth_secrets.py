"""Client keys never leave the gateway: not upstream (any door, any backend kind, either
header), not in any log line, not in /status, /metrics or the dashboard's data."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from auth_support import AUTH, DOORS, HI, MODEL, Clock, bearer, set_auth_env, x_api_key
from gateway_support import GatewayHandle, config_text, http, set_keys

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]
BACKENDS = {"llamacpp": MODEL, "ollama": "llama3:latest", "openai": "gpt-4o-mini"}


@pytest.fixture
def fleet(
    fake_server: FakeFactory, gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> tuple[GatewayHandle, dict[str, Any], dict[str, str], dict[str, str]]:
    """One fake of three kinds (the OpenAI one with the gateway's own upstream key)."""
    upstream = set_keys(monkeypatch)
    keys = set_auth_env(monkeypatch)
    fakes = {
        f"{kind}:one": fake_server(kind, [model], api_key=upstream.get(kind))
        for kind, model in BACKENDS.items()
    }
    return gateway(config_text(fakes, extra=AUTH), clock=Clock()), fakes, keys, upstream


def _every_door(gw: GatewayHandle, header: dict[str, str]) -> None:
    for model in BACKENDS.values():
        for stream in (False, True):
            for path in ("/v1/chat/completions", "/api/chat"):
                reply = http(
                    "POST",
                    gw.url + path,
                    {"model": model, "messages": HI, "stream": stream},
                    header,
                )
                assert reply.status == 200, reply.body
    for path in ("/v1/models", "/api/tags", "/api/version"):
        assert http("GET", gw.url + path, None, header).status == 200


def test_client_key_never_reaches_a_backend(
    fleet: tuple[GatewayHandle, dict[str, Any], dict[str, str], dict[str, str]],
) -> None:
    """No upstream request carries the client's key; the OpenAI backend gets the gateway's own."""
    gw, fakes, keys, upstream = fleet
    _every_door(gw, bearer(keys["bob"]))
    _every_door(gw, x_api_key(keys["bob"]))
    for name, fake in fakes.items():
        logged = fake.requests
        assert any(r["method"] == "POST" for r in logged), name
        for request in logged:
            text = json.dumps(request["headers"]) + json.dumps(request["json"])
            assert keys["bob"] not in text, (name, request["path"])
    sent = [r["headers"].get("Authorization") for r in fakes["openai:one"].requests]
    assert f"Bearer {upstream['openai']}" in sent


def test_no_key_in_logs_status_metrics_or_dashboard(
    fleet: tuple[GatewayHandle, dict[str, Any], dict[str, str], dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No key in any log line, /status, /metrics or /ui/data, whatever the outcome; key=NAME is."""
    gw, _fakes, keys, _upstream = fleet
    wrong = "rk-wrong-key-of-a-stranger-0123456789"
    with caplog.at_level(logging.DEBUG):
        _every_door(gw, bearer(keys["bob"]))
        for door in DOORS:
            http(door.method, gw.url + door.path, door.body, bearer(wrong))
            http(door.method, gw.url + door.path, door.with_model("other"), bearer(keys["alice"]))
            for _ in range(3):
                http(door.method, gw.url + door.path, door.body, x_api_key(keys["carol"]))
        for path in ("/status", "/metrics", "/ui/data"):
            assert http("GET", gw.url + path, None, bearer(keys["bob"])).status == 401
            assert http("GET", gw.url + path, None, x_api_key(wrong)).status == 401
        shown = [
            http("GET", gw.url + path, None, bearer(keys["admin"]))
            for path in ("/status", "/metrics", "/ui/data", "/ui")
        ]
        gw.path.write_text(gw.path.read_text("utf-8") + "# touched\n", encoding="utf-8")
        assert gw.reload_check() is True
    assert all(reply.status == 200 for reply in shown)
    lines = [caplog.text] + [r.getMessage() for r in caplog.records]
    bodies = [reply.body.decode() + repr(reply.headers) for reply in shown]
    for secret in [*keys.values(), wrong]:
        for text in lines + bodies:
            assert secret not in text
    access = [r.getMessage() for r in caplog.records if r.name == "routing.access"]
    assert any(line.endswith(" key=bob") and "status=200" in line for line in access)
    assert any(line.endswith(" key=alice") and "status=403" in line for line in access)
    assert any(line.endswith(" key=carol") and "status=429" in line for line in access)
    assert any(line.endswith(" key=-") and "status=401" in line for line in access)
