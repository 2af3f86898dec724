"""The real `openai`, `ollama` and `anthropic` clients read the fakes' tool calls, stop reasons
and edge-fault answers the way they read the real servers'."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ollama
import openai
import pytest
from fakes_support import tools_of

from fake_servers import CALL_TOOLS
from fake_servers.pytest_plugin import FakeServerFactory

ASK_TOOLS = [{"role": "user", "content": CALL_TOOLS}]
TWO_CALLS = [("get_weather", {"city": "Paris", "n": 1}), ("get_time", {"city": "Paris", "n": 2})]


def openai_client(url: str, key: str = "sk-local") -> openai.OpenAI:
    """An OpenAI client on the fake's /v1, without retries."""
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


@pytest.fixture
def anthropic_mod() -> Any:
    """The anthropic package (skips when it is not installed)."""
    return pytest.importorskip("anthropic")


@pytest.fixture
def ollama_client(fake_server: FakeServerFactory) -> Iterator[tuple[ollama.Client, int]]:
    """An ollama client on a fresh fake Ollama, and the fake's port."""
    fake = fake_server("ollama")
    client = ollama.Client(host=fake.url)
    yield client, fake.port
    client._client.close()


@pytest.mark.parametrize("kind", ["llamacpp", "lmstudio", "openai"])
def test_openai_client_tool_calls(fake_server: FakeServerFactory, kind: str) -> None:
    """The openai client parses tool calls, whole and streamed (deltas joined by index)."""
    fake = fake_server(kind, ["m-1"])
    with openai_client(fake.url) as client:
        whole = client.chat.completions.create(
            model="m-1", messages=ASK_TOOLS, tools=tools_of("openai")
        )
        chunks = list(
            client.chat.completions.create(
                model="m-1", messages=ASK_TOOLS, tools=tools_of("openai"), stream=True
            )
        )
    choice = whole.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert not choice.message.content
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == TWO_CALLS
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for chunk in chunks:
        for delta in chunk.choices[0].delta.tool_calls or []:
            assert delta.function is not None
            if delta.function.name:
                names[delta.index] = delta.function.name
            arguments[delta.index] = arguments.get(delta.index, "") + (
                delta.function.arguments or ""
            )
    assert [(names[i], json.loads(arguments[i])) for i in sorted(names)] == TWO_CALLS
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_openai_client_errors(fake_server: FakeServerFactory) -> None:
    """error429 is a RateLimitError with Retry-After; error401 an AuthenticationError, also
    for the model list; poison an InternalServerError."""
    fake = fake_server("openai", ["m-1"], fault="error429:3")
    with openai_client(fake.url, "sk-abc") as client:
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(model="m-1", messages=ASK_TOOLS)
        fake.set_fault("error401")
        with pytest.raises(openai.AuthenticationError) as refused:
            client.models.list()
        fake.set_fault("poison")
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="m-1", messages=[{"role": "user", "content": "POISON"}]
            )
        fine = client.chat.completions.create(model="m-1", messages=ASK_TOOLS)
    assert limited.value.response.headers["Retry-After"] == "3"
    assert limited.value.code == "rate_limit_exceeded"
    assert refused.value.code == "invalid_api_key"
    assert "Bearer sk-abc" in refused.value.message
    assert fine.choices[0].message.content == f"I am m-1 on openai port {fake.port}"


def test_openai_client_stop_and_images(fake_server: FakeServerFactory) -> None:
    """The openai client sends image parts and stop; the fake counts and cuts."""
    fake = fake_server("llamacpp", ["m-1"])
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    with openai_client(fake.url) as client:
        seen = client.chat.completions.create(
            model="m-1",
            messages=[{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}],
        )
        cut = client.chat.completions.create(
            model="m-1", messages=[{"role": "user", "content": "hi"}], stop=[" on"]
        )
    assert seen.choices[0].message.content == f"I am m-1 on llamacpp port {fake.port}; images: 1"
    assert (cut.choices[0].message.content, cut.choices[0].finish_reason) == ("I am m-1", "stop")


def test_ollama_client_tool_calls(ollama_client: tuple[ollama.Client, int]) -> None:
    """The ollama client parses whole tool calls, plain and streamed."""
    client, _ = ollama_client
    whole = client.chat(model="llama3", messages=ASK_TOOLS, tools=tools_of("ollama"))
    parts = list(
        client.chat(model="llama3", messages=ASK_TOOLS, tools=tools_of("ollama"), stream=True)
    )
    calls = whole.message.tool_calls or []
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == TWO_CALLS
    streamed = [c for p in parts for c in p.message.tool_calls or []]
    assert [(c.function.name, dict(c.function.arguments)) for c in streamed] == TWO_CALLS
    assert whole.done_reason == "stop"


def test_ollama_client_images_stop_and_tool_results(
    ollama_client: tuple[ollama.Client, int],
) -> None:
    """The ollama client sends images, options.stop and tool messages; the fake sees them."""
    client, port = ollama_client
    seen = client.chat(
        model="llama3", messages=[{"role": "user", "content": "what?", "images": [b"\x89PNG"]}]
    )
    cut = client.chat(
        model="llama3", messages=[{"role": "user", "content": "hi"}], options={"stop": [" on"]}
    )
    results = client.chat(
        model="llama3",
        messages=[*ASK_TOOLS, {"role": "tool", "content": "sunny", "tool_name": "get_weather"}],
    )
    assert seen.message.content == f"I am llama3:latest on ollama port {port}; images: 1"
    assert cut.message.content == "I am llama3:latest"
    assert results.message.content == f"I am llama3:latest on ollama port {port}; tool results: 1"


def test_ollama_client_errors(fake_server: FakeServerFactory) -> None:
    """The ollama client raises ResponseError 429 and 401 with the fake's messages."""
    fake = fake_server("ollama", fault="error429")
    client = ollama.Client(host=fake.url, headers={"Authorization": "Bearer sk-o"})
    try:
        with pytest.raises(ollama.ResponseError) as limited:
            client.chat(model="llama3", messages=ASK_TOOLS)
        fake.set_fault("error401")
        with pytest.raises(ollama.ResponseError) as refused:
            client.list()
    finally:
        client._client.close()
    assert limited.value.status_code == 429
    assert refused.value.status_code == 401
    assert refused.value.error == "Incorrect API key provided: Bearer sk-o"


def test_anthropic_client_tool_use(fake_server: FakeServerFactory, anthropic_mod: Any) -> None:
    """The anthropic client reads tool_use blocks, and its stream helper rebuilds their input
    from the input_json_delta fragments."""
    fake = fake_server("anthropic", ["claude-x"])
    client = anthropic_mod.Anthropic(base_url=fake.url, api_key="sk-ant", max_retries=0)
    with client:
        whole = client.messages.create(
            model="claude-x", max_tokens=64, messages=ASK_TOOLS, tools=tools_of("anthropic")
        )
        with client.messages.stream(
            model="claude-x", max_tokens=64, messages=ASK_TOOLS, tools=tools_of("anthropic")
        ) as stream:
            final = stream.get_final_message()
    for message in (whole, final):
        assert message.stop_reason == "tool_use"
        assert [(b.name, b.input) for b in message.content] == TWO_CALLS


def test_anthropic_client_stop_sequence(fake_server: FakeServerFactory, anthropic_mod: Any) -> None:
    """The anthropic client sees stop_reason stop_sequence and the sequence, plain and streamed."""
    fake = fake_server("anthropic", ["claude-x"])
    client = anthropic_mod.Anthropic(base_url=fake.url, api_key="sk-ant", max_retries=0)
    hi = [{"role": "user", "content": "hi"}]
    with client:
        whole = client.messages.create(
            model="claude-x", max_tokens=64, messages=hi, stop_sequences=[" port"]
        )
        with client.messages.stream(
            model="claude-x", max_tokens=64, messages=hi, stop_sequences=[" port"]
        ) as stream:
            final = stream.get_final_message()
    for message in (whole, final):
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", " port")
        assert message.content[0].text == "I am claude-x on anthropic"


def test_anthropic_client_errors(fake_server: FakeServerFactory, anthropic_mod: Any) -> None:
    """The anthropic client maps error429 to RateLimitError and error401 to
    AuthenticationError; a stream-error event raises mid-stream."""
    fake = fake_server("anthropic", ["claude-x"], fault="error429:2")
    client = anthropic_mod.Anthropic(base_url=fake.url, api_key="sk-ant-q", max_retries=0)
    hi = [{"role": "user", "content": "hi"}]
    with client:
        with pytest.raises(anthropic_mod.RateLimitError) as limited:
            client.messages.create(model="claude-x", max_tokens=8, messages=hi)
        fake.set_fault("error401")
        with pytest.raises(anthropic_mod.AuthenticationError):
            client.models.list()
        fake.set_fault("echo-auth:stream-error")
        with (
            pytest.raises(anthropic_mod.APIStatusError) as broken,
            client.messages.stream(model="claude-x", max_tokens=8, messages=hi) as stream,
        ):
            stream.get_final_message()
    assert limited.value.response.headers["Retry-After"] == "2"
    assert "sk-ant-q" in str(broken.value)
