"""The fake LM Studio, OpenAI and Anthropic servers: shapes, 404s and API-key checks."""

from __future__ import annotations

import httpx
import pytest
from fakes_support import KEY_HEADERS, chat, parse_sse, stream_events

from fake_servers.pytest_plugin import FakeServerFactory


@pytest.mark.parametrize(
    ("kind", "owned_by", "default"),
    [
        ("lmstudio", "organization_owner", "qwen2.5-7b-instruct"),
        ("openai", "system", "gpt-4o-mini"),
    ],
)
def test_models_list(
    fake_server: FakeServerFactory, kind: str, owned_by: str, default: str
) -> None:
    """/v1/models lists the models OpenAI-style, with the kind's owned_by and default model."""
    fake = fake_server(kind)
    with httpx.Client(timeout=5) as client:
        body = client.get(fake.url + "/v1/models", headers=KEY_HEADERS[kind]).json()
    assert body["object"] == "list"
    assert [(m["id"], m["object"], m["owned_by"]) for m in body["data"]] == [
        (default, "model", owned_by)
    ]


@pytest.mark.parametrize("kind", ["lmstudio", "openai"])
def test_chat_and_stream(fake_server: FakeServerFactory, kind: str) -> None:
    """Non-stream and stream chat name the model that answered; the stream ends with [DONE]."""
    fake = fake_server(kind, ["m-1", "m-2"])
    with httpx.Client(timeout=5) as client:
        body = chat(client, fake.url, kind, "m-2").json()
        streamed = chat(client, fake.url, kind, "m-2", stream=True)
    expected = f"I am m-2 on {kind} port {fake.port}"
    assert body["model"] == "m-2"
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": expected}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert streamed.text.endswith("data: [DONE]\n\n")
    events = stream_events(kind, streamed.text)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == expected
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("kind", ["lmstudio", "openai"])
def test_unknown_model_404(fake_server: FakeServerFactory, kind: str) -> None:
    """An unknown model is a 404 model_not_found error in OpenAI's shape."""
    fake = fake_server(kind)
    with httpx.Client(timeout=5) as client:
        response = chat(client, fake.url, kind, "nope")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "model_not_found"
    assert "nope" in error["message"]


def test_lmstudio_has_no_health(fake_server: FakeServerFactory) -> None:
    """LM Studio has no /health: 404."""
    fake = fake_server("lmstudio")
    with httpx.Client(timeout=5) as client:
        assert client.get(fake.url + "/health").status_code == 404


def test_openai_requires_bearer_key(fake_server: FakeServerFactory) -> None:
    """OpenAI answers 401 invalid_api_key without a bearer key on every /v1 endpoint."""
    fake = fake_server("openai")
    with httpx.Client(timeout=5) as client:
        no_key = client.get(fake.url + "/v1/models")
        empty = client.get(fake.url + "/v1/models", headers={"Authorization": "Bearer"})
        chat_no_key = client.post(fake.url + "/v1/chat/completions", json={"model": "x"})
        ok = client.get(fake.url + "/v1/models", headers={"Authorization": "Bearer anything"})
    for response in (no_key, empty, chat_no_key):
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "invalid_api_key"
        assert error["message"].startswith("Incorrect API key provided")
    assert ok.status_code == 200


def test_openai_exact_api_key(fake_server: FakeServerFactory) -> None:
    """With api_key set, only that exact key is accepted."""
    fake = fake_server("openai", api_key="sk-right")
    with httpx.Client(timeout=5) as client:
        wrong = client.get(fake.url + "/v1/models", headers={"Authorization": "Bearer sk-no"})
        right = client.get(fake.url + "/v1/models", headers={"Authorization": "Bearer sk-right"})
    assert wrong.status_code == 401
    assert right.status_code == 200


def test_anthropic_requires_x_api_key(fake_server: FakeServerFactory) -> None:
    """Anthropic answers 401 authentication_error without x-api-key."""
    fake = fake_server("anthropic")
    with httpx.Client(timeout=5) as client:
        response = client.post(fake.url + "/v1/messages", json={})
        models = client.get(fake.url + "/v1/models")
    assert response.status_code == models.status_code == 401
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "authentication_error"


def test_anthropic_accepts_bearer_key(fake_server: FakeServerFactory) -> None:
    """Anthropic also takes `Authorization: Bearer KEY` (the anthropic 2.x client's way),
    matched against api_key like x-api-key."""
    fake = fake_server("anthropic", api_key="sk-ant-right")
    with httpx.Client(timeout=5) as client:
        right = client.get(
            fake.url + "/v1/models", headers={"Authorization": "Bearer sk-ant-right"}
        )
        wrong = client.get(fake.url + "/v1/models", headers={"Authorization": "Bearer sk-no"})
        not_bearer = client.get(fake.url + "/v1/models", headers={"Authorization": "sk-ant-right"})
        header = client.get(fake.url + "/v1/models", headers={"x-api-key": "sk-ant-right"})
    assert (right.status_code, header.status_code) == (200, 200)
    assert (wrong.status_code, not_bearer.status_code) == (401, 401)


def test_anthropic_message(fake_server: FakeServerFactory) -> None:
    """A non-stream message has Anthropic's shape and names who answered."""
    fake = fake_server("anthropic")
    with httpx.Client(timeout=5) as client:
        body = chat(client, fake.url, "anthropic", "claude-3-5-haiku-latest").json()
    assert body["id"].startswith("msg_")
    assert body["type"] == "message"
    assert body["role"] == "assistant"
    assert body["model"] == "claude-3-5-haiku-latest"
    expected = f"I am claude-3-5-haiku-latest on anthropic port {fake.port}"
    assert body["content"] == [{"type": "text", "text": expected}]
    assert body["stop_reason"] == "end_turn"
    assert body["stop_sequence"] is None
    assert body["usage"]["input_tokens"] > 0
    assert body["usage"]["output_tokens"] > 0


def test_anthropic_stream_events(fake_server: FakeServerFactory) -> None:
    """The stream is SSE with Anthropic's event sequence and text_delta pieces."""
    fake = fake_server("anthropic")
    with httpx.Client(timeout=5) as client:
        response = chat(client, fake.url, "anthropic", "claude-3-5-haiku-latest", stream=True)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    names = [event for event, _ in parse_sse(response.text)]
    deltas = names.count("content_block_delta")
    assert deltas > 2
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    events = stream_events("anthropic", response.text)
    assert [e["type"] for e in events] == names
    assert events[0]["message"]["model"] == "claude-3-5-haiku-latest"
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == f"I am claude-3-5-haiku-latest on anthropic port {fake.port}"


def test_anthropic_errors(fake_server: FakeServerFactory) -> None:
    """Unknown model is 404 not_found_error; a missing max_tokens is 400."""
    fake = fake_server("anthropic")
    headers = KEY_HEADERS["anthropic"]
    with httpx.Client(timeout=5) as client:
        unknown = chat(client, fake.url, "anthropic", "claude-nope")
        no_max = client.post(
            fake.url + "/v1/messages",
            json={"model": "claude-3-5-haiku-latest", "messages": []},
            headers=headers,
        )
        path = client.get(fake.url + "/v2/x", headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found_error"
    assert no_max.status_code == 400
    assert no_max.json()["error"]["type"] == "invalid_request_error"
    assert path.status_code == 404


def test_anthropic_models(fake_server: FakeServerFactory) -> None:
    """GET /v1/models lists type/id/display_name/created_at with paging fields."""
    fake = fake_server("anthropic", ["claude-a", "claude-b"])
    with httpx.Client(timeout=5) as client:
        body = client.get(fake.url + "/v1/models", headers=KEY_HEADERS["anthropic"]).json()
    assert [m["id"] for m in body["data"]] == ["claude-a", "claude-b"]
    assert all(m["type"] == "model" and m["display_name"] and m["created_at"] for m in body["data"])
    assert (body["has_more"], body["first_id"], body["last_id"]) == (False, "claude-a", "claude-b")
