"""The admin plane (/status, /metrics, /ui/data need the admin key; /healthz and the /ui page
never need one) and per-key accounting in /metrics (requests by status, tokens from usage)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from auth_support import AUTH, HI, MODEL, OTHER, Clock, bearer, set_auth_env, x_api_key
from gateway_support import GatewayHandle, config_text, http
from prometheus_client.parser import text_string_to_metric_families

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]
ADMIN_PATHS = ("/status", "/metrics", "/ui/data")


@pytest.fixture
def gw(
    fake_server: FakeFactory, gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> tuple[GatewayHandle, dict[str, str]]:
    """A gateway with the test keys and an admin key, over one llama.cpp fake."""
    keys = set_auth_env(monkeypatch)
    fake = fake_server("llamacpp", [MODEL, OTHER])
    return gateway(config_text({"llamacpp:a": fake}, extra=AUTH), clock=Clock()), keys


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_admin_paths_need_the_admin_key(
    gw: tuple[GatewayHandle, dict[str, str]], path: str
) -> None:
    """No key, a client key or a wrong key: 401; the admin key as Bearer: 200."""
    handle, keys = gw
    for headers in ({}, bearer(keys["bob"]), x_api_key(keys["bob"]), bearer(keys["admin"] + "x")):
        reply = http("GET", handle.url + path, None, headers)
        assert reply.status == 401, headers
        assert reply.json()["error"]["code"] == "invalid_admin_key"
    assert http("GET", handle.url + path, None, bearer(keys["admin"])).status == 200


def test_healthz_and_the_page_need_no_key(gw: tuple[GatewayHandle, dict[str, str]]) -> None:
    """/healthz and /ui answer 200 without any key (the page asks for the admin key)."""
    handle, _keys = gw
    assert http("GET", handle.url + "/healthz").json() == {"status": "ok"}
    page = http("GET", handle.url + "/ui")
    assert page.status == 200 and b'id="admin-key"' in page.body


def test_admin_plane_is_open_without_admin_key_env(
    fake_server: FakeFactory, gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With client keys but no admin_key_env, /status and /metrics need no key (the doors do)."""
    set_auth_env(monkeypatch)
    fake = fake_server("llamacpp", [MODEL])
    handle = gateway(
        config_text(
            {"llamacpp:a": fake},
            extra=AUTH.replace("    admin_key_env: ROUTING_TEST_ADMIN_KEY\n", ""),
        )
    )
    for path in ADMIN_PATHS:
        assert http("GET", handle.url + path).status == 200
    assert http("GET", handle.url + "/v1/models").status == 401


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_per_key_requests_and_tokens_in_metrics(gw: tuple[GatewayHandle, dict[str, str]]) -> None:
    """/metrics counts requests per key and status, and the tokens the clients were given."""
    handle, keys = gw
    prompt = completion = 0
    reply = http(
        "POST",
        handle.url + "/v1/chat/completions",
        {"model": MODEL, "messages": HI},
        bearer(keys["bob"]),
    ).json()
    prompt += reply["usage"]["prompt_tokens"]
    completion += reply["usage"]["completion_tokens"]
    ollama = http(
        "POST",
        handle.url + "/api/chat",
        {"model": MODEL, "messages": HI, "stream": False},
        bearer(keys["bob"]),
    ).json()
    prompt += ollama["prompt_eval_count"]
    completion += ollama["eval_count"]
    streamed = http(
        "POST", handle.url + "/api/chat", {"model": MODEL, "messages": HI}, bearer(keys["bob"])
    ).body.splitlines()
    last = json.loads(streamed[-1])
    prompt += last["prompt_eval_count"]
    completion += last["eval_count"]
    sse = http(
        "POST",
        handle.url + "/v1/chat/completions",
        {"model": MODEL, "messages": HI, "stream": True, "stream_options": {"include_usage": True}},
        bearer(keys["bob"]),
    ).body.decode()
    usage = [
        json.loads(event[6:])["usage"]
        for event in sse.split("\n\n")
        if event.startswith("data: {") and json.loads(event[6:]).get("usage")
    ]
    assert len(usage) == 1
    prompt += usage[0]["prompt_tokens"]
    completion += usage[0]["completion_tokens"]
    assert prompt > 0 and completion > 0
    assert (
        http(
            "POST",
            handle.url + "/api/chat",
            {"model": OTHER, "messages": HI},
            bearer(keys["alice"]),
        ).status
        == 403
    )
    text = http("GET", handle.url + "/metrics", None, bearer(keys["admin"])).body.decode()
    samples = _samples(text)
    assert samples[("routing_key_requests_total", (("key", "bob"), ("status", "200")))] == 4
    assert samples[("routing_key_requests_total", (("key", "alice"), ("status", "403")))] == 1
    assert samples[("routing_key_prompt_tokens_total", (("key", "bob"),))] == prompt
    assert samples[("routing_key_completion_tokens_total", (("key", "bob"),))] == completion
    for secret in keys.values():
        assert secret not in text
