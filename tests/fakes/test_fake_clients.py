"""The real `openai` and `ollama` client packages accept what the fakes send."""

from __future__ import annotations

import ollama
import openai
import pytest

from fake_servers.pytest_plugin import FakeServerFactory


@pytest.mark.parametrize("kind", ["llamacpp", "lmstudio", "openai"])
def test_openai_client_non_stream(fake_server: FakeServerFactory, kind: str) -> None:
    """openai.OpenAI().chat.completions.create parses the fake's reply."""
    fake = fake_server(kind, ["m-1"])
    with openai.OpenAI(base_url=fake.url + "/v1", api_key="sk-local", max_retries=0) as client:
        reply = client.chat.completions.create(
            model="m-1", messages=[{"role": "user", "content": "hi"}]
        )
        models = client.models.list()
    assert reply.model == "m-1"
    assert reply.choices[0].message.content == f"I am m-1 on {kind} port {fake.port}"
    assert reply.choices[0].finish_reason == "stop"
    assert [m.id for m in models.data] == ["m-1"]


@pytest.mark.parametrize("kind", ["llamacpp", "lmstudio", "openai"])
def test_openai_client_stream(fake_server: FakeServerFactory, kind: str) -> None:
    """The openai client streams the fake's SSE chunks, including the usage chunk."""
    fake = fake_server(kind, ["m-1"])
    with openai.OpenAI(base_url=fake.url + "/v1", api_key="sk-local", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="m-1",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"I am m-1 on {kind} port {fake.port}"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_openai_client_sees_errors(fake_server: FakeServerFactory) -> None:
    """The openai client maps the fakes' 401 and 404 to its own exceptions."""
    fake = fake_server("openai", api_key="sk-right")
    lms = fake_server("lmstudio")
    with (
        openai.OpenAI(base_url=fake.url + "/v1", api_key="sk-local", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.models.list()
    with (
        openai.OpenAI(base_url=lms.url + "/v1", api_key="sk-local", max_retries=0) as client,
        pytest.raises(openai.NotFoundError) as caught,
    ):
        client.chat.completions.create(model="nope", messages=[])
    assert caught.value.code == "model_not_found"


def test_ollama_client_chat_and_list(fake_server: FakeServerFactory) -> None:
    """ollama.Client chat (stream and not) and list() parse the fake's replies."""
    fake = fake_server("ollama", ["llama3", "qwen2.5:7b"])
    client = ollama.Client(host=fake.url)
    try:
        reply = client.chat(model="llama3", messages=[{"role": "user", "content": "hi"}])
        parts = list(
            client.chat(
                model="qwen2.5:7b", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        listed = client.list()
        running = client.ps()
    finally:
        client._client.close()
    assert reply.message.content == f"I am llama3:latest on ollama port {fake.port}"
    assert reply.done and reply.done_reason == "stop"
    assert reply.model == "llama3:latest"
    text = "".join(p.message.content or "" for p in parts)
    assert text == f"I am qwen2.5:7b on ollama port {fake.port}"
    assert parts[-1].done and parts[-1].eval_count
    assert [m.model for m in listed.models] == ["llama3:latest", "qwen2.5:7b"]
    assert listed.models[0].details is not None
    assert [m.model for m in running.models] == ["llama3:latest"]


def test_ollama_client_not_found(fake_server: FakeServerFactory) -> None:
    """The ollama client raises ResponseError 404 for a model the fake does not have."""
    fake = fake_server("ollama")
    client = ollama.Client(host=fake.url)
    try:
        with pytest.raises(ollama.ResponseError) as caught:
            client.chat(model="nope", messages=[{"role": "user", "content": "hi"}])
    finally:
        client._client.close()
    assert caught.value.status_code == 404
    assert caught.value.error == "model 'nope' not found"
