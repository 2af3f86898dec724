"""Hardening: loopback by default, configured URLs only, no secrets anywhere."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from gateway_support import HI, GatewayHandle, chat, config_text, http, set_keys

from routing._gateway_server import Gateway
from routing.config import parse_config
from routing.errors import ConfigError

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]
KNOWN_PATHS = {
    "/health",
    "/v1/models",
    "/v1/chat/completions",
    "/api/tags",
    "/api/ps",
    "/api/version",
    "/api/chat",
    "/v1/messages",
}


def test_binds_loopback_by_default() -> None:
    """Without a host, the gateway binds 127.0.0.1 (the config default)."""
    config = parse_config(
        "version: 1\nproviders:\n  llamacpp:\n    api: openai\n"
        "    instances:\n      a: {port: 9}\n",
        environ={},
    )

    assert Gateway(config).host == "127.0.0.1"

    async def bound() -> str:
        gateway = await Gateway(config).start(port=0)
        try:
            assert gateway._runner is not None
            return str(gateway._runner.addresses[0][0])
        finally:
            await gateway.stop()

    assert asyncio.run(bound()) == "127.0.0.1"


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("../../admin", None),
        ("http://127.0.0.1:{evil}/v1/chat/completions", None),
        ("a.gguf", "http://127.0.0.1:{evil}"),
        ("a.gguf", "llamacpp:../../admin"),
        ("@127.0.0.1:{evil}", "127.0.0.1:{evil}"),
    ],
)
def test_only_configured_urls_are_called(
    fake_server: FakeFactory, gateway: GatewayFactory, model: str, provider: str | None
) -> None:
    """Model names and X-Routing-Provider never reach a URL: only configured ones are called."""
    evil = fake_server("llamacpp", ["a.gguf"])
    good = fake_server("llamacpp", ["a.gguf"])
    # any-ready sends even unknown model names on, so the name reaches the backend's body.
    gw = gateway(config_text({"llamacpp:a": good}, extra="fallback: any-ready\n"))
    headers = {"X-Routing-Provider": provider.format(evil=evil.port)} if provider else {}
    reply = chat(gw.url, model.format(evil=evil.port), headers=headers)
    assert reply.status in (200, 400, 404)
    assert evil.requests == []
    assert {r["path"] for r in good.requests} <= KNOWN_PATHS


def test_secrets_never_leak(
    fake_server: FakeFactory,
    gateway: GatewayFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """API keys appear in no log line, /status, /metrics, reply or error."""
    keys = set_keys(monkeypatch)
    caplog.set_level(logging.DEBUG)
    openai_fake = fake_server("openai", ["gpt-4o-mini"], api_key=keys["openai"])
    anthropic_fake = fake_server(
        "anthropic", ["claude-3-5-haiku-latest"], api_key=keys["anthropic"]
    )
    defaults = "  retries: 0\n  probe: {timeout: 1, ttl: 30}\n"
    gw = gateway(
        config_text({"openai:o": openai_fake, "anthropic:a": anthropic_fake}, defaults=defaults)
    )
    bodies = [
        chat(gw.url, "gpt-4o-mini").body,
        chat(gw.url, "claude-3-5-haiku-latest").body,
        chat(gw.url, "gpt-4o-mini", stream=True).body,
    ]
    assert b"I am gpt-4o-mini" in bodies[0]
    openai_fake.set_fault("error500")
    bodies.append(chat(gw.url, "gpt-4o-mini").body)
    anthropic_fake.stop()
    bodies.append(chat(gw.url, "claude-3-5-haiku-latest").body)
    bodies.append(http("GET", gw.url + "/status").body)
    bodies.append(http("GET", gw.url + "/metrics").body)
    bodies.append(http("POST", gw.url + "/api/chat", {"model": "gpt-4o-mini", "messages": HI}).body)
    seen = b"\n".join(bodies).decode() + "\n".join(r.getMessage() for r in caplog.records)
    for key in keys.values():
        assert key not in seen
    assert any(
        r["headers"].get("Authorization") == f"Bearer {keys['openai']}"
        for r in openai_fake.requests
    )


def test_url_credentials_are_refused_without_echoing_them() -> None:
    """A password in an instance URL is a located config error that does not repeat it."""
    text = (
        "version: 1\nproviders:\n  openai:\n    api: openai\n    instances:\n"
        "      o: {url: 'http://user:hunter2@127.0.0.1:9/v1'}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ={})
    issue = info.value.issues[0]
    assert issue.json_path == "$.providers.openai.instances.o.url" and issue.line == 6
    assert "api_key_env" in issue.message and "hunter2" not in str(info.value)
