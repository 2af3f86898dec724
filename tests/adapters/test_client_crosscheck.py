"""Cross-checks with the official ``openai`` and ``ollama`` client packages."""

from __future__ import annotations

from typing import Any

import ollama
import openai
import pytest
from adapter_support import KINDS, MODEL, chat, instance_for, run, stream
from openai.types.chat import ChatCompletion, ChatCompletionChunk


@pytest.mark.parametrize("kind", KINDS)
def test_replies_parse_as_openai_types(fake_server: Any, kind: str) -> None:
    """Every adapter's reply and chunks validate as the openai package's types."""
    inst = instance_for(kind, fake_server(kind, [MODEL[kind]]).url)
    completion = ChatCompletion.model_validate(chat(inst))
    assert completion.choices[0].message.content
    asked = {
        "messages": [{"role": "user", "content": "hi"}],
        "stream_options": {"include_usage": True},
    }
    chunks = [ChatCompletionChunk.model_validate(c) for c in stream(inst, asked)]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_openai_client_sends_what_the_adapter_sends(fake_server: Any) -> None:
    """The openai client and the openai adapter put the same body on the wire."""
    fake = fake_server("lmstudio", [MODEL["lmstudio"]])
    params: dict[str, Any] = {
        "temperature": 0.2,
        "top_p": 0.5,
        "max_tokens": 9,
        "seed": 1,
        "stop": ["x"],
    }
    messages = [{"role": "user", "content": "hi"}]

    async def official() -> None:
        async with openai.AsyncOpenAI(base_url=fake.url + "/v1", api_key="sk-x") as client:
            await client.chat.completions.create(
                model=MODEL["lmstudio"], messages=messages, **params
            )  # type: ignore[arg-type]

    run(official())
    chat(instance_for("lmstudio", fake.url), {"messages": messages, **params})
    client_body, adapter_body = (r["json"] for r in fake.requests[-2:])
    adapter_body.pop("stream")  # the client leaves the default out
    assert client_body == adapter_body


def test_ollama_client_sends_what_the_adapter_sends(fake_server: Any) -> None:
    """The ollama client and the ollama adapter put the same messages/options on the wire."""
    fake = fake_server("ollama", [MODEL["ollama"]])
    messages = [{"role": "user", "content": "hi"}]
    options = {"temperature": 0.2, "top_p": 0.5, "num_predict": 9, "seed": 1, "stop": ["x"]}

    async def official() -> Any:
        async with ollama.AsyncClient(host=fake.url) as client:
            return await client.chat(
                model=MODEL["ollama"], messages=messages, options=options, stream=False
            )

    answer = run(official())
    reply = chat(
        instance_for("ollama", fake.url),
        {
            "messages": messages,
            "temperature": 0.2,
            "top_p": 0.5,
            "max_tokens": 9,
            "seed": 1,
            "stop": "x",
        },
    )
    client_body, adapter_body = (r["json"] for r in fake.requests[-2:])
    assert adapter_body["options"] == {
        k: v for k, v in client_body["options"].items() if v is not None
    }
    assert adapter_body["messages"] == client_body["messages"]
    assert reply["choices"][0]["message"]["content"] == answer.message.content
    assert reply["usage"]["completion_tokens"] == answer.eval_count
