"""The dashboard without a browser: one self-contained page (nothing fetched from elsewhere,
a CSP admitting only its own script and style), and the data behind it."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any

from gateway_support import GatewayHandle, chat, config_text, http, wait_until

from routing._dashboard import PAGE
from routing._decision import Candidate, Decision
from routing._decisions import DecisionLog

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]


def test_page_is_self_contained() -> None:
    """The page loads nothing from anywhere: inline script and style, one fetch to ui/data."""
    text = PAGE.decode()
    assert not re.search(r"https?:|//[a-z]", text, re.I)
    assert not re.search(r"<(link|img|iframe|object|embed)\b|\bsrc=|@import|url\(", text)
    assert text.count("<script>") == 1 and text.count("<style>") == 1
    assert re.findall(r"fetch\('([^']+)'", text) == ["ui/data"]
    assert ".innerHTML" not in text  # data becomes text, never markup


def test_page_headers(fake_server: FakeFactory, gateway: GatewayFactory) -> None:
    """/ui is HTML with a CSP whose hashes are those of its inline script and style."""
    gw = gateway(config_text({"llamacpp:a": fake_server("llamacpp", ["a.gguf"])}))
    reply = http("GET", gw.url + "/ui")
    assert reply.status == 200 and reply.body == PAGE
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = reply.headers["Content-Security-Policy"]
    text = PAGE.decode()
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        inline = re.search(f"<{tag}>(.*)</{tag}>", text, re.S)
        assert inline is not None
        digest = base64.b64encode(hashlib.sha256(inline.group(1).encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp


def test_data_follows_the_fleet(fake_server: FakeFactory, gateway: GatewayFactory) -> None:
    """/ui/data: instances, counters, a decision's trace (no URL) and a fresh DOWN state."""
    a = fake_server("llamacpp", ["a.gguf"])
    b = fake_server("ollama", ["llama3:latest", "qwen2.5:7b"])
    gw = gateway(
        config_text(
            {"llamacpp:a": a, "ollama:b": b}, defaults="  probe: {timeout: 0.5, ttl: 0.05}\n"
        )
    )
    assert chat(gw.url, "a.gguf").status == 200
    data = http("GET", gw.url + "/ui/data").json()
    rows = {r["instance"]: r for r in data["instances"]}
    assert rows["llamacpp:a"]["state"] == "READY" and rows["llamacpp:a"]["requests_total"] == 1
    assert rows["llamacpp:a"]["latency_sum"] > 0
    assert rows["ollama:b"]["models"] == ["llama3:latest", "qwen2.5:7b"]
    assert rows["ollama:b"]["loaded"] == ["llama3:latest"]
    [decision] = data["decisions"]
    assert (decision["instance"], decision["model"], decision["status"], decision["path"]) == (
        "llamacpp:a",
        "a.gguf",
        200,
        "/v1/chat/completions",
    )
    assert decision["key"] is None and decision["candidates"][0]["chosen"] is True
    assert "base_url" not in decision and a.url not in str(decision)
    assert data["keys"] == [] and data["decisions_total"] == 1
    b.stop()

    def b_down() -> bool:
        rows = http("GET", gw.url + "/ui/data").json()["instances"]
        return any(r["instance"] == "ollama:b" and r["state"] == "DOWN" for r in rows)

    wait_until(b_down, what="ollama:b DOWN in /ui/data")


def _decision(n: int) -> Decision:
    return Decision(
        "p",
        f"p:{n}",
        "http://127.0.0.1:1/v1",
        "openai",
        "m",
        "why",
        trace=(Candidate(f"p:{n}", "READY", ("m",), True, "chosen"),),
    )


def test_decision_log_is_a_bounded_ring_newest_first() -> None:
    """The decision log keeps the newest `size` entries, newest first, and counts them all."""
    log = DecisionLog(size=3)
    for n in range(5):
        log.add(
            _decision(n),
            method="POST",
            path="/v1/chat/completions",
            status=200,
            key="alice",
            latency_ms=1.234,
            failovers=0,
            at=100.0 + n,
        )
    latest = log.latest()
    assert [d["instance"] for d in latest] == ["p:4", "p:3", "p:2"]
    assert len(log) == 3 and log.total == 5
    assert latest[0]["latency_ms"] == 1.2 and latest[0]["at"] == 104.0
    assert latest[0]["candidates"] == [
        {
            "instance": "p:4",
            "state": "READY",
            "models": ["m"],
            "chosen": True,
            "why": "chosen",
            "inflight": 0,
            "loaded": [],
        }
    ]
