"""The real clients with gateway keys: ``openai`` (api_key), ``ollama`` (headers) and
``anthropic`` (x-api-key), each seeing 401, 403 and 429 as its own error types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import ollama
import openai
import pytest
from auth_support import AUTH, HI, MODEL, OTHER, Clock, bearer, set_auth_env
from gateway_support import GatewayHandle, config_text

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]


@pytest.fixture
def gw(
    fake_server: FakeFactory, gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> tuple[GatewayHandle, dict[str, str]]:
    """A gateway with the test keys over one llama.cpp fake."""
    keys = set_auth_env(monkeypatch)
    fake = fake_server("llamacpp", [MODEL, OTHER])
    return gateway(config_text({"llamacpp:a": fake}, extra=AUTH), clock=Clock()), keys


def _openai(gw: GatewayHandle, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def test_openai_client(gw: tuple[GatewayHandle, dict[str, str]]) -> None:
    """openai: its api_key is the gateway key; 401, 403 and 429 are its own exceptions."""
    handle, keys = gw
    with _openai(handle, keys["alice"]) as client:
        reply = client.chat.completions.create(model=MODEL, messages=HI)  # type: ignore[arg-type]
        assert reply.model == MODEL
        with client.chat.completions.create(
            model=MODEL,
            messages=HI,  # type: ignore[arg-type]
            stream=True,
        ) as stream:
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        with pytest.raises(openai.PermissionDeniedError) as denied:
            client.chat.completions.create(model=OTHER, messages=HI)  # type: ignore[arg-type]
        assert denied.value.code == "model_not_allowed"
    with (
        _openai(handle, "rk-wrong-0123456789abcdef") as client,
        pytest.raises(openai.AuthenticationError) as refused,
    ):
        client.models.list()
    assert refused.value.code == "invalid_api_key"
    with _openai(handle, keys["carol"]) as client:
        client.models.list()
        client.models.list()
        with pytest.raises(openai.RateLimitError) as limited:
            client.models.list()
    assert limited.value.response.headers["Retry-After"] == "30"


def test_ollama_client(gw: tuple[GatewayHandle, dict[str, str]]) -> None:
    """ollama: the key rides in the client's headers; refusals are ResponseErrors with status."""
    handle, keys = gw
    with ollama.Client(host=handle.url, headers=bearer(keys["alice"])) as client:
        assert client.chat(model=MODEL, messages=HI).message.content
        assert "".join(
            part.message.content or ""
            for part in client.chat(model=MODEL, messages=HI, stream=True)
        )
        with pytest.raises(ollama.ResponseError) as denied:
            client.chat(model=OTHER, messages=HI)
    assert denied.value.status_code == 403 and "may not use" in denied.value.error
    with ollama.Client(host=handle.url) as client, pytest.raises(ollama.ResponseError) as refused:
        client.list()
    assert refused.value.status_code == 401 and "x-api-key" in refused.value.error
    with ollama.Client(host=handle.url, headers={"x-api-key": keys["carol"]}) as client:
        client.list()
        client.list()
        with pytest.raises(ollama.ResponseError) as limited:
            client.list()
    assert limited.value.status_code == 429


def _has_messages_door(handle: GatewayHandle) -> bool:
    return any(r.canonical == "/v1/messages" for r in handle.gateway.app.router.resources())


def test_anthropic_client_is_refused_in_its_own_shape(
    gw: tuple[GatewayHandle, dict[str, str]],
) -> None:
    """anthropic: a wrong x-api-key is an AuthenticationError parsed from Anthropic's shape."""
    handle, _keys = gw
    with (
        anthropic.Anthropic(
            base_url=handle.url, api_key="rk-wrong-0123456789abcdef", max_retries=0
        ) as client,
        pytest.raises(anthropic.AuthenticationError) as refused,
    ):
        client.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
    assert refused.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "unknown API key"},
    }


def test_anthropic_models_list_is_refused_in_its_own_shape(
    gw: tuple[GatewayHandle, dict[str, str]],
) -> None:
    """anthropic: models.list() with a wrong key is refused in Anthropic's shape too (it
    sends anthropic-version), and served with a good one."""
    handle, keys = gw
    with (
        anthropic.Anthropic(
            base_url=handle.url, api_key="rk-wrong-0123456789abcdef", max_retries=0
        ) as client,
        pytest.raises(anthropic.AuthenticationError) as refused,
    ):
        client.models.list()
    assert refused.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "unknown API key"},
    }
    with anthropic.Anthropic(base_url=handle.url, api_key=keys["alice"], max_retries=0) as client:
        assert MODEL in [m.id for m in client.models.list()]


def test_anthropic_client_with_keys(gw: tuple[GatewayHandle, dict[str, str]]) -> None:
    """anthropic: the key as x-api-key is served; another model is a PermissionDeniedError."""
    handle, keys = gw
    if not _has_messages_door(handle):
        pytest.skip("the Anthropic door (/v1/messages) is not in this gateway yet")
    with anthropic.Anthropic(base_url=handle.url, api_key=keys["alice"], max_retries=0) as client:
        reply = client.messages.create(model=MODEL, max_tokens=16, messages=HI)  # type: ignore[arg-type]
        assert reply.content
        with pytest.raises(anthropic.PermissionDeniedError):
            client.messages.create(model=OTHER, max_tokens=16, messages=HI)  # type: ignore[arg-type]
