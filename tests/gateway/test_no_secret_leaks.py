"""Secrets never leave: an upstream quoting the key it got reaches no client, status, log or
later error, whatever kind of answer carries the quote."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from gateway_support import GatewayHandle, config_text, http, set_keys

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]
MODES = ("401", "429", "500", "200-error", "text", "stream-error", "probe")
MODEL = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest"}


def _requests(gw: GatewayHandle, model: str) -> list[Any]:
    """One request per door and style: OpenAI and Ollama doors, streamed and not."""
    hi = [{"role": "user", "content": "hi"}]
    out = []
    for stream in (False, True):
        out.append(
            http(
                "POST",
                gw.url + "/v1/chat/completions",
                {"model": model, "messages": hi, "stream": stream},
            )
        )
        out.append(
            http("POST", gw.url + "/api/chat", {"model": model, "messages": hi, "stream": stream})
        )
    return out


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", MODES)
def test_echoed_key_reaches_nobody(
    fake_server: FakeFactory,
    gateway: GatewayFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    mode: str,
) -> None:
    """Every way an upstream can quote our key: clients, /status, /metrics, logs, later errors."""
    keys = set_keys(monkeypatch)
    secret = keys[kind]
    fake = fake_server(kind, [MODEL[kind]])
    other = fake_server("llamacpp", ["other.gguf"])
    gw = gateway(config_text({f"{kind}:default": fake, "llamacpp:x": other}))
    with caplog.at_level(logging.DEBUG):
        assert (
            http(
                "POST",
                gw.url + "/v1/chat/completions",
                {"model": MODEL[kind], "messages": [{"role": "user", "content": "hi"}]},
            ).status
            == 200
        )
        fake.set_fault(f"echo-auth:{mode}")
        if mode == "probe":
            gw.loop.run(gw.gateway.router.refresh())
        seen = [r.body + repr(r.headers).encode() for r in _requests(gw, MODEL[kind])]
        gw.loop.run(gw.gateway.router.refresh())
        later = [  # other clients' errors list the candidates and their details
            http(
                "POST",
                gw.url + "/v1/chat/completions",
                {"model": "unknown-model", "messages": [{"role": "user", "content": "x"}]},
            ),
            http(
                "POST",
                gw.url + "/api/chat",
                {
                    "model": MODEL[kind],
                    "messages": [{"role": "user", "content": "x"}],
                    "stream": False,
                },
            ),
        ]
        seen += [r.body for r in later]
        seen.append(http("GET", gw.url + "/status").body)
        seen.append(http("GET", gw.url + "/metrics").body)
        seen.append(http("GET", gw.url + "/v1/models").body)
    quoted = fake.requests[-1]["headers"]
    assert any(secret in v for v in quoted.values()), "the fake did get the key to quote"
    for blob in seen:
        text = blob.decode("utf-8", "replace")
        assert secret not in text and secret[:20] not in text, text[:300]
    logged = "\n".join(r.getMessage() + str(r.exc_text or "") for r in caplog.records)
    assert secret not in logged and secret[:20] not in logged
