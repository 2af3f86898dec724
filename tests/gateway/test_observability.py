"""/v1/models, /status, /metrics (parsed as Prometheus text) and the access log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from gateway_support import GatewayHandle, chat, config_text, http

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]


@pytest.fixture
def fleet(
    fake_server: FakeFactory, gateway: GatewayFactory
) -> tuple[dict[str, Any], GatewayHandle]:
    """Two llama.cpp fakes sharing a model, one Ollama, behind one gateway."""
    fakes = {
        "llamacpp:one": fake_server("llamacpp", ["a.gguf", "shared.gguf"]),
        "llamacpp:two": fake_server("llamacpp", ["shared.gguf"]),
        "ollama:o": fake_server("ollama", ["llama3:latest"]),
    }
    return fakes, gateway(config_text(fakes))


def test_models_lists_ready_instances_once_each(
    fleet: tuple[dict[str, Any], GatewayHandle],
) -> None:
    """/v1/models: every model of every READY instance, owned_by provider:instance."""
    fakes, gw = fleet
    fakes["ollama:o"].stop()
    reply = http("GET", gw.url + "/v1/models").json()
    assert reply["object"] == "list"
    pairs = sorted((m["id"], m["owned_by"]) for m in reply["data"])
    assert pairs == [
        ("a.gguf", "llamacpp:one"),
        ("shared.gguf", "llamacpp:one"),
        ("shared.gguf", "llamacpp:two"),
    ]
    assert all(m["object"] == "model" and isinstance(m["created"], int) for m in reply["data"])


def test_ollama_tags_and_version(fleet: tuple[dict[str, Any], GatewayHandle]) -> None:
    """/api/tags lists each READY model name once; /api/version answers."""
    _fakes, gw = fleet
    names = [m["name"] for m in http("GET", gw.url + "/api/tags").json()["models"]]
    assert sorted(names) == ["a.gguf", "llama3:latest", "shared.gguf"]
    assert http("GET", gw.url + "/api/version").json()["version"]


def test_status_reports_instances(fleet: tuple[dict[str, Any], GatewayHandle]) -> None:
    """/status: each instance's state, models, breaker and last probe age."""
    fakes, gw = fleet
    fakes["ollama:o"].stop()
    assert chat(gw.url, "a.gguf").status == 200
    http("GET", gw.url + "/v1/models")
    rows = {r["instance"]: r for r in http("GET", gw.url + "/status").json()["instances"]}
    assert set(rows) == set(fakes)
    assert rows["llamacpp:one"]["state"] == "READY"
    assert rows["llamacpp:one"]["models"] == ["a.gguf", "shared.gguf"]
    assert rows["ollama:o"]["state"] == "DOWN"
    for row in rows.values():
        assert {"breaker", "last_probe_age", "models", "state"} <= set(row)
        assert "api_key" not in row and "api_key_env" not in row


def test_metrics_parse_as_prometheus(fake_server: FakeFactory, gateway: GatewayFactory) -> None:
    """/metrics parses with prometheus_client and counts requests, failovers, wrong models."""
    parser = pytest.importorskip("prometheus_client.parser")
    first = fake_server("llamacpp", ["a.gguf"])
    second = fake_server("llamacpp", ["a.gguf"], fault="wrong-model")
    gw = gateway(config_text({"llamacpp:one": first, "llamacpp:two": second}))
    assert chat(gw.url, "a.gguf").status == 200
    first.set_fault("error500")
    assert chat(gw.url, "a.gguf").routed_to == "llamacpp:two"
    reply = http("GET", gw.url + "/metrics")
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in parser.text_string_to_metric_families(reply.body.decode())}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    ok = (
        "routing_requests_total",
        (("instance", "llamacpp:one"), ("model", "a.gguf"), ("outcome", "ok")),
    )
    assert samples[ok] == 1
    assert families["routing_request_duration_seconds"].type == "histogram"
    inf = (
        "routing_request_duration_seconds_bucket",
        (("instance", "llamacpp:one"), ("le", "+Inf")),
    )
    assert samples[inf] >= 2
    assert any(
        name == "routing_failovers_total" and dict(labels)["instance"] == "llamacpp:one"
        for name, labels in samples
    )
    assert any(name == "routing_wrong_model_replies_total" for name, _ in samples)
    assert any(name == "routing_probes_total" for name, _ in samples)
    assert samples[("routing_instance_inflight", (("instance", "llamacpp:one"),))] == 0
    warm = ("routing_model_loaded", (("instance", "llamacpp:two"), ("model", "a.gguf")))
    assert samples[warm] == 1  # a single-model llama.cpp has what it lists loaded
    gone = ("routing_model_loaded", (("instance", "llamacpp:one"), ("model", "a.gguf")))
    assert samples[gone] == 0  # its 500s were confirmed by the probe: nothing is served
    state = ("routing_instance_state", (("instance", "llamacpp:two"), ("state", "READY")))
    assert samples[state] == 1
    http_ok = (
        "routing_gateway_responses_total",
        (("method", "POST"), ("route", "/v1/chat/completions"), ("status", "200")),
    )
    assert samples[http_ok] == 2


def test_access_log_line(
    fleet: tuple[dict[str, Any], GatewayHandle], caplog: pytest.LogCaptureFixture
) -> None:
    """One routing.access line per request: method, path, status, instance, model, latency."""
    _fakes, gw = fleet
    caplog.set_level(logging.INFO, logger="routing.access")
    chat(gw.url, "a.gguf")
    chat(gw.url, "nobody.gguf")
    lines = [r.getMessage() for r in caplog.records if r.name == "routing.access"]
    assert len(lines) == 2
    fields = dict(part.split("=", 1) for part in lines[0].split())
    assert fields["method"] == "POST" and fields["path"] == "/v1/chat/completions"
    assert fields["status"] == "200" and fields["instance"] == "llamacpp:one"
    assert fields["model"] == "a.gguf" and fields["failovers"] == "0"
    assert float(fields["latency_ms"]) >= 0
    assert "status=404" in lines[1] and "model=nobody.gguf" in lines[1]


def test_access_log_costs_nothing_when_off(
    fleet: tuple[dict[str, Any], GatewayHandle], caplog: pytest.LogCaptureFixture
) -> None:
    """With routing.access above INFO, no access record is created at all."""
    _fakes, gw = fleet
    caplog.set_level(logging.WARNING, logger="routing.access")
    chat(gw.url, "a.gguf")
    assert not [r for r in caplog.records if r.name == "routing.access"]
