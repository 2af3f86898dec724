"""Bad requests and backend failures map to the documented statuses, OpenAI-shaped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from gateway_support import HI, GatewayHandle, chat, config_text, http, sse_text

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]


@pytest.fixture
def one_llama(fake_server: FakeFactory, gateway: GatewayFactory) -> tuple[Any, GatewayHandle]:
    """A llama.cpp fake serving a.gguf behind a gateway with a 2 KB body limit."""
    fake = fake_server("llamacpp", ["a.gguf"])
    text = config_text({"llamacpp:a": fake}, extra="gateway: {max_body_bytes: 2048}\n")
    return fake, gateway(text)


def _error(reply: Any, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.body
    error: dict[str, Any] = reply.json()["error"]
    assert {"message", "type", "code"} <= set(error)
    return error


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "must be a JSON object"),
        (b"\xff\xfe{}", "JSON"),
        (b'{"model": "a.gguf"}', "Missing required parameter: 'messages'"),
        (b'{"model": "a.gguf", "messages": "hi"}', "Invalid type for 'messages'"),
        (b'{"model": "a.gguf", "messages": []}', "Invalid 'messages': empty array"),
        (b'{"model": "a.gguf", "messages": [{"content": "x"}]}', "'messages[0].role'"),
        (b'{"model": "a.gguf", "messages": [{"role": "user", "content": 3}]}', "content"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', "'model'"),
        (b'{"model": "a.gguf", "stream": "yes", "messages": [{"role": "user"}]}', "'stream'"),
        (
            b'{"model": "a.gguf", "temperature": "hot", "messages": [{"role": "user"}]}',
            "Invalid type for 'temperature': expected a number",
        ),
        (
            b'{"model": "a.gguf", "max_tokens": 1.5, "messages": [{"role": "user"}]}',
            "Invalid type for 'max_tokens': expected an integer",
        ),
    ],
)
def test_bad_request_is_400(one_llama: tuple[Any, GatewayHandle], body: bytes, needle: str) -> None:
    """Malformed JSON, missing or mistyped fields answer 400 with a clear message."""
    fake, gw = one_llama
    reply = http("POST", gw.url + "/v1/chat/completions", body)
    error = _error(reply, 400)
    assert needle in error["message"]
    assert error["type"] == "invalid_request_error"
    assert not [r for r in fake.requests if r["path"] == "/v1/chat/completions"]


def test_body_too_large_is_413(one_llama: tuple[Any, GatewayHandle]) -> None:
    """A body over gateway.max_body_bytes answers 413, never reaching a backend."""
    fake, gw = one_llama
    big = {"model": "a.gguf", "messages": [{"role": "user", "content": "x" * 4096}]}
    error = _error(http("POST", gw.url + "/v1/chat/completions", big), 413)
    assert "2048" in error["message"]
    assert not [r for r in fake.requests if r["path"] == "/v1/chat/completions"]


def test_ollama_door_bad_request(one_llama: tuple[Any, GatewayHandle]) -> None:
    """The Ollama door answers bad requests 400 in Ollama's own error shape."""
    _fake, gw = one_llama
    reply = http("POST", gw.url + "/api/chat", {"model": "a.gguf"})
    assert reply.status == 400
    assert "Missing required parameter: 'messages'" in reply.json()["error"]


def test_unknown_model_is_404_listing_who_serves_what(one_llama: tuple[Any, GatewayHandle]) -> None:
    """No route: 404 model_not_found naming every candidate, its state and its models."""
    _fake, gw = one_llama
    error = _error(chat(gw.url, "nobody.gguf"), 404)
    assert error["code"] == "model_not_found"
    assert "llamacpp:a" in error["message"] and "a.gguf" in error["message"]
    assert error["candidates"][0]["instance"] == "llamacpp:a"


def test_unknown_path_is_404_json(one_llama: tuple[Any, GatewayHandle]) -> None:
    """An unknown path answers an OpenAI-shaped 404 too."""
    _fake, gw = one_llama
    assert _error(http("GET", gw.url + "/v1/nothing"), 404)["code"] == "not_found"


def test_all_candidates_down_is_503(fake_server: FakeFactory, gateway: GatewayFactory) -> None:
    """When no candidate is READY the gateway answers 503, naming the instance."""
    fake = fake_server("llamacpp", ["a.gguf"])
    gw = gateway(config_text({"llamacpp:a": fake}))
    fake.stop()
    reply = chat(gw.url, "a.gguf")
    error = _error(reply, 503)
    assert "llamacpp:a" in error["message"]


def test_hang_is_504(fake_server: FakeFactory, gateway: GatewayFactory) -> None:
    """A backend that never answers gives 504 after request_timeout, X-Routed-To set."""
    fake = fake_server("llamacpp", ["a.gguf"])
    defaults = "  request_timeout: 0.3\n  retries: 0\n  probe: {timeout: 1, ttl: 30}\n"
    gw = gateway(config_text({"llamacpp:a": fake}, defaults=defaults))
    assert chat(gw.url, "a.gguf").status == 200
    fake.set_fault("hang")
    reply = chat(gw.url, "a.gguf")
    assert _error(reply, 504)["code"] == "backend_timeout"
    assert reply.routed_to == "llamacpp:a"


@pytest.mark.parametrize("fault", ["error500", "garbage"])
def test_backend_failure_is_502(
    fake_server: FakeFactory, gateway: GatewayFactory, fault: str
) -> None:
    """A 5xx or garbage reply gives 502 with X-Routed-To naming the failing instance."""
    fake = fake_server("llamacpp", ["a.gguf"])
    defaults = "  retries: 0\n  probe: {timeout: 1, ttl: 30}\n"
    gw = gateway(config_text({"llamacpp:a": fake}, defaults=defaults))
    assert chat(gw.url, "a.gguf").status == 200
    fake.set_fault(fault)
    reply = chat(gw.url, "a.gguf")
    assert _error(reply, 502)["code"] == "backend_error"
    assert reply.routed_to == "llamacpp:a"


def test_backend_4xx_passes_through(fake_server: FakeFactory, gateway: GatewayFactory) -> None:
    """A backend's 4xx keeps its status and its message (Ollama 404 for an unknown model)."""
    fake = fake_server("ollama", ["llama3:latest"])
    gw = gateway(config_text({"ollama:o": fake}, extra="fallback: any-ready\n"))
    reply = chat(gw.url, "mistral")
    error = _error(reply, 404)
    assert "mistral" in error["message"]
    assert reply.routed_to == "ollama:o"


def test_failover_before_first_byte_is_invisible(
    fake_server: FakeFactory, gateway: GatewayFactory
) -> None:
    """A stream whose first instance fails comes from the next one; X-Routed-To names it."""
    first = fake_server("llamacpp", ["a.gguf"])
    second = fake_server("llamacpp", ["a.gguf"])
    gw = gateway(config_text({"llamacpp:one": first, "llamacpp:two": second}))
    assert chat(gw.url, "a.gguf").routed_to == "llamacpp:one"
    first.set_fault("error500")
    reply = chat(gw.url, "a.gguf", stream=True)
    assert reply.status == 200
    assert reply.routed_to == "llamacpp:two"
    assert sse_text(reply.body).endswith(f"port {second.port}")
    assert reply.body.endswith(b"data: [DONE]\n\n")


def test_mid_stream_failure_is_an_sse_error_event(
    fake_server: FakeFactory, gateway: GatewayFactory
) -> None:
    """A stream cut after its first chunk ends with an SSE error event, never retried."""
    first = fake_server("llamacpp", ["a.gguf"], fault="drop")
    second = fake_server("llamacpp", ["a.gguf"])
    gw = gateway(config_text({"llamacpp:one": first, "llamacpp:two": second}))
    reply = chat(gw.url, "a.gguf", stream=True)
    assert reply.status == 200
    assert reply.routed_to == "llamacpp:one"
    events = [e for e in reply.body.decode().split("\n\n") if e]
    assert events[0].startswith("data: {")
    assert events[-1].startswith('data: {"error":')
    assert b"[DONE]" not in reply.body
    assert not [r for r in second.requests if r["path"] == "/v1/chat/completions"]


def test_routed_to_on_every_routed_response(
    fake_server: FakeFactory, gateway: GatewayFactory
) -> None:
    """X-Routed-To is on streamed, non-streamed, Ollama-door and provider-pinned 404 replies."""
    fake = fake_server("llamacpp", ["a.gguf"])
    gw = gateway(config_text({"llamacpp:a": fake}))
    assert chat(gw.url, "a.gguf").routed_to == "llamacpp:a"
    assert chat(gw.url, "a.gguf", stream=True).routed_to == "llamacpp:a"
    assert chat(gw.url, None).routed_to == "llamacpp:a"  # no model: auto-select
    ollama_reply = http(
        "POST", gw.url + "/api/chat", {"model": "a.gguf", "messages": HI, "stream": False}
    )
    assert ollama_reply.routed_to == "llamacpp:a"
    pinned = chat(gw.url, "other.gguf", headers={"X-Routing-Provider": "llamacpp:a"})
    assert pinned.status == 404
    assert pinned.routed_to == "llamacpp:a"
