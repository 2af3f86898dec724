"""Edge faults on every kind: rate limits, refused keys, quoted credentials, poison, redirects."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fakes_support import (
    HEALTH_PATH,
    KEY_HEADERS,
    MODEL,
    MODELS_PATH,
    chat,
    chat_body,
    error_message,
    parse_sse,
    post_chat,
    reply_text,
)

from fake_servers import ECHO_AUTH_MODES, FAULT_NAMES, KINDS, POISON, parse_fault
from fake_servers.pytest_plugin import FakeServerFactory

OPENAI_STYLE = ("llamacpp", "lmstudio", "openai")
HI = [{"role": "user", "content": "hi"}]

SECRET: dict[str, tuple[str, str]] = {
    "llamacpp": ("Authorization", "Bearer sk-llama-secret-0001"),
    "ollama": ("Authorization", "Bearer sk-ollama-secret-0002"),
    "lmstudio": ("Authorization", "Bearer sk-lms-secret-0003"),
    "openai": ("Authorization", "Bearer sk-openai-secret-0004"),
    "anthropic": ("x-api-key", "sk-ant-secret-0005"),
}
"""The credential each kind reads, with a value the tests look for in answers."""


def probes(client: httpx.Client, url: str, kind: str, **headers: str) -> list[httpx.Response]:
    """The kind's health and model-list probes."""
    return [
        client.get(url + path, headers=KEY_HEADERS[kind] | headers)
        for path in (HEALTH_PATH[kind], MODELS_PATH[kind])
    ]


def secret_chat(
    client: httpx.Client, url: str, kind: str, stream: bool, messages: list[Any] = HI
) -> httpx.Response:
    """A chat request carrying the kind's secret credential."""
    name, value = SECRET[kind]
    return post_chat(client, url, kind, chat_body(kind, messages, stream), **{name: value})


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("error429", "error429:1"),
        ("error429:7", "error429:7"),
        ("error401", "error401"),
        ("echo-auth", "echo-auth:500"),
        *((f"echo-auth:{mode}", f"echo-auth:{mode}") for mode in ECHO_AUTH_MODES),
        ("poison", "poison"),
        ("redirect", "redirect"),
        ("redirect:http://127.0.0.1:9/x", "redirect:http://127.0.0.1:9/x"),
    ],
)
def test_parse_new_faults(text: str, shown: str) -> None:
    """New faults parse, print in their canonical form and parse back to the same fault."""
    fault = parse_fault(text)
    assert fault.name in FAULT_NAMES
    assert str(fault) == shown
    assert parse_fault(shown) == fault


@pytest.mark.parametrize(
    "text", ["error429:", "error429:1.5", "echo-auth:418", "echo-auth:", "redirect:", "poison:1"]
)
def test_bad_new_faults(text: str) -> None:
    """A bad argument to a new fault is a ValueError."""
    with pytest.raises(ValueError, match="fault"):
        parse_fault(text)


def test_new_fault_over_http(fake_server: FakeServerFactory) -> None:
    """POST /_fake/fault takes the new faults with arguments and refuses bad ones."""
    fake = fake_server("ollama")
    with httpx.Client(timeout=5) as client:
        set_ok = client.post(fake.url + "/_fake/fault", json={"fault": "echo-auth:probe"})
        set_bad = client.post(fake.url + "/_fake/fault", json={"fault": "echo-auth:teapot"})
    assert set_ok.json()["fault"] == "echo-auth:probe"
    assert set_bad.status_code == 400
    assert fake.state()["fault"] == "echo-auth:probe"


# -- error429 --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_error429_on_chat_only(fake_server: FakeServerFactory, kind: str) -> None:
    """error429:S: chat (stream or not) is 429 with Retry-After: S in the kind's shape; probes
    answer normally."""
    fake = fake_server(kind, fault="error429:7")
    with httpx.Client(timeout=5) as client:
        answers = [chat(client, fake.url, kind, MODEL[kind], stream=s) for s in (False, True)]
        probed = probes(client, fake.url, kind)
    for response in answers:
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        body = response.json()
        assert "Rate limit" in error_message(kind, body)
        if kind == "anthropic":
            assert body["error"]["type"] == "rate_limit_error"
        elif kind in ("openai", "lmstudio"):
            assert body["error"]["code"] == "rate_limit_exceeded"
        elif kind == "llamacpp":
            assert body["error"]["code"] == 429
    assert [r.status_code for r in probed] == [200, 200]


def test_error429_default_retry_after(fake_server: FakeServerFactory) -> None:
    """error429 without seconds sends Retry-After: 1; switching it off answers again."""
    fake = fake_server("llamacpp", fault="error429")
    with httpx.Client(timeout=5) as client:
        limited = chat(client, fake.url, "llamacpp", "x")
        fake.set_fault("none")
        served = chat(client, fake.url, "llamacpp", "x")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    assert served.status_code == 200


# -- error401 --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_error401_everywhere(fake_server: FakeServerFactory, kind: str) -> None:
    """error401: chat and probes answer 401 quoting the credential the fake got, in the kind's
    own shape."""
    fake = fake_server(kind, fault="error401")
    name, value = SECRET[kind]
    with httpx.Client(timeout=5) as client:
        answers = [
            secret_chat(client, fake.url, kind, stream=False),
            *probes(client, fake.url, kind, **{name: value}),
        ]
    message = f"Incorrect API key provided: {value}"
    for response in answers:
        assert response.status_code == 401
        body = response.json()
        if kind == "anthropic":
            assert body == {
                "type": "error",
                "error": {"type": "authentication_error", "message": message},
            }
        elif kind == "ollama":
            assert body == {"error": message}
        else:
            assert body == {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }


def test_error401_without_credentials(fake_server: FakeServerFactory) -> None:
    """error401 on a request without any key says so."""
    fake = fake_server("llamacpp", fault="error401")
    with httpx.Client(timeout=5) as client:
        response = client.get(fake.url + "/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Incorrect API key provided: <none>"


# -- echo-auth -------------------------------------------------------------------------------

ECHO_STATUS = {"401": 401, "429": 429, "500": 500, "200-error": 200, "text": 500}


@pytest.mark.parametrize("mode", sorted(ECHO_STATUS))
@pytest.mark.parametrize("kind", KINDS)
def test_echo_auth_chat_modes(fake_server: FakeServerFactory, kind: str, mode: str) -> None:
    """echo-auth:MODE: a chat (stream or not) answers MODE's status with a body quoting the full
    credential; probes answer normally."""
    fake = fake_server(kind, fault=f"echo-auth:{mode}")
    _, value = SECRET[kind]
    with httpx.Client(timeout=5) as client:
        answers = [secret_chat(client, fake.url, kind, stream=s) for s in (False, True)]
        probed = probes(client, fake.url, kind)
    for response in answers:
        assert response.status_code == ECHO_STATUS[mode]
        assert value in response.text
        if mode == "text":
            assert response.headers["Content-Type"].startswith("text/plain")
            with pytest.raises(json.JSONDecodeError):
                response.json()
        else:
            assert value in error_message(kind, response.json())
        assert ("Retry-After" in response.headers) == (mode == "429")
    assert [r.status_code for r in probed] == [200, 200]


def test_echo_auth_quotes_every_credential(fake_server: FakeServerFactory) -> None:
    """echo-auth quotes both Authorization and x-api-key when both are sent."""
    fake = fake_server("anthropic", fault="echo-auth")
    headers = {"Authorization": "Bearer sk-both-1", "x-api-key": "sk-both-2"}
    with httpx.Client(timeout=5) as client:
        response = post_chat(client, fake.url, "anthropic", chat_body("anthropic", HI), **headers)
    assert response.status_code == 500
    message = error_message("anthropic", response.json())
    assert "Bearer sk-both-1" in message and "sk-both-2" in message


def stream_error_parts(kind: str, text: str) -> tuple[list[Any], Any]:
    """The good events of a stream-error stream and its final error event."""
    if kind == "ollama":
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        return lines[:-1], lines[-1]
    events = parse_sse(text)
    assert "[DONE]" not in [data for _, data in events]
    *good, (name, last) = events
    assert name == ("error" if kind == "anthropic" else None)
    return [json.loads(data) for _, data in good], json.loads(last)


@pytest.mark.parametrize("kind", KINDS)
def test_echo_auth_stream_error(fake_server: FakeServerFactory, kind: str) -> None:
    """echo-auth:stream-error: a stream sends one good content chunk, then an error event
    quoting the credential, then ends; a non-stream chat is a 500 quoting it."""
    fake = fake_server(kind, fault="echo-auth:stream-error")
    _, value = SECRET[kind]
    with httpx.Client(timeout=5) as client:
        streamed = secret_chat(client, fake.url, kind, stream=True)
        plain = secret_chat(client, fake.url, kind, stream=False)
    assert streamed.status_code == 200
    good, error = stream_error_parts(kind, streamed.text)
    assert value in error_message(kind, error)
    if kind == "ollama":
        assert [g["message"]["content"] for g in good] == ["I"]
    elif kind == "anthropic":
        assert [g["type"] for g in good].count("content_block_delta") == 1
    else:
        assert [g["choices"][0]["delta"].get("content") for g in good][1:] == ["I"]
    assert plain.status_code == 500
    assert value in plain.text


def test_echo_auth_stream_error_on_ollama_v1(fake_server: FakeServerFactory) -> None:
    """On Ollama's OpenAI-compatible /v1 the stream error is an OpenAI-style data event."""
    fake = fake_server("ollama", fault="echo-auth:stream-error")
    body = chat_body("llamacpp", HI, stream=True) | {"model": "llama3"}
    with httpx.Client(timeout=5) as client:
        response = client.post(
            fake.url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k-9"}
        )
    _, error = stream_error_parts("openai", response.text)
    assert error["error"]["type"] == "server_error"
    assert "Bearer k-9" in error["error"]["message"]


@pytest.mark.parametrize("kind", KINDS)
def test_echo_auth_probe(fake_server: FakeServerFactory, kind: str) -> None:
    """echo-auth:probe: health and model-list probes answer 500 quoting the credential; chats
    answer normally."""
    fake = fake_server(kind, fault="echo-auth:probe")
    name, value = SECRET[kind]
    with httpx.Client(timeout=5) as client:
        probed = probes(client, fake.url, kind, **{name: value})
        served = secret_chat(client, fake.url, kind, stream=False)
    for response in probed:
        assert response.status_code == 500
        assert value in error_message(kind, response.json())
    assert served.status_code == 200


# -- poison ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_poison_fails_one_request(fake_server: FakeServerFactory, kind: str) -> None:
    """poison: only a chat whose last user message says POISON is a 500; the same server
    answers other chats (even with POISON earlier) and probes."""
    fake = fake_server(kind, fault="poison")
    poisoned = [{"role": "user", "content": f"please {POISON} this"}]
    earlier = [*poisoned, {"role": "assistant", "content": "no"}, *HI]
    with httpx.Client(timeout=5) as client:
        failed = [
            post_chat(client, fake.url, kind, chat_body(kind, poisoned, stream=s))
            for s in (False, True)
        ]
        served = post_chat(client, fake.url, kind, chat_body(kind, earlier))
        probed = probes(client, fake.url, kind)
    for response in failed:
        assert response.status_code == 500
        assert "chat template error" in error_message(kind, response.json())
    assert served.status_code == 200
    assert reply_text(kind, served, stream=False).startswith("I am ")
    assert [r.status_code for r in probed] == [200, 200]


def test_poison_llamacpp_shape_and_parts(fake_server: FakeServerFactory) -> None:
    """llama.cpp's poison answer has its handler error shape; POISON in a text part counts."""
    fake = fake_server("llamacpp", fault="poison")
    parts = [{"role": "user", "content": [{"type": "text", "text": POISON}]}]
    with httpx.Client(timeout=5) as client:
        response = post_chat(client, fake.url, "llamacpp", chat_body("llamacpp", parts))
    assert response.status_code == 500
    error = response.json()["error"]
    assert list(error) == ["code", "message", "type"]
    assert (error["code"], error["type"]) == (500, "server_error")


# -- redirect --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_redirect_everything(fake_server: FakeServerFactory, kind: str) -> None:
    """redirect: chat and probes answer 307 to the fake's /_fake/redirected, which answers 200
    and counts the requests that followed."""
    fake = fake_server(kind, fault="redirect")
    target = fake.url + "/_fake/redirected"
    with httpx.Client(timeout=5) as client:
        answers = [chat(client, fake.url, kind, MODEL[kind]), *probes(client, fake.url, kind)]
        assert fake.state()["redirected_hits"] == 0
        followed = chat(client, fake.url, kind, MODEL[kind])
        followed = client.send(followed.next_request) if followed.next_request else followed
    for response in answers:
        assert response.status_code == 307
        assert response.headers["Location"] == target
    assert followed.status_code == 200
    assert followed.json() == {"redirected": True}
    assert fake.state()["redirected_hits"] == 1
    last = fake.requests[-1]
    assert (last["method"], last["path"]) == ("POST", "/_fake/redirected")


def test_redirect_to_url(fake_server: FakeServerFactory) -> None:
    """redirect:URL sends every request to URL."""
    fake = fake_server("openai", fault="redirect:http://127.0.0.1:9/elsewhere")
    with httpx.Client(timeout=5) as client:
        response = client.get(fake.url + "/v1/models")
    assert response.status_code == 307
    assert response.headers["Location"] == "http://127.0.0.1:9/elsewhere"
