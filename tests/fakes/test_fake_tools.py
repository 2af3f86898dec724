"""Tool calls, tool results, images, stop sequences and usage chunks in every kind's wire format."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fakes_support import (
    chat_body,
    parse_sse,
    post_chat,
    reply_text,
    stream_events,
    streamed_tool_calls,
    tool_calls_of,
    tools_of,
)

from fake_servers import CALL_TOOLS, INTERLEAVE_TOOLS, KINDS
from fake_servers.pytest_plugin import FakeServerFactory

OPENAI_STYLE = ("llamacpp", "lmstudio", "openai")
ASK_TOOLS = [{"role": "user", "content": f"weather and time please {CALL_TOOLS}"}]
TWO_CALLS = [
    ("get_weather", {"city": "Paris", "n": 1}),
    ("get_time", {"city": "Paris", "n": 2}),
]
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
    "AAAABJRU5ErkJggg=="
)
"""A 1x1 PNG, base64."""


def ask(
    fake_url: str, kind: str, messages: list[Any], stream: bool = False, **extra: Any
) -> httpx.Response:
    """One chat request to the fake; fails unless it is answered 200."""
    with httpx.Client(timeout=5) as client:
        response = post_chat(client, fake_url, kind, chat_body(kind, messages, stream, **extra))
    assert response.status_code == 200, response.text
    return response


def calls_in(kind: str, response: httpx.Response, stream: bool) -> list[tuple[str, Any]]:
    """The tool calls of a reply, reassembled when streamed."""
    if stream:
        return streamed_tool_calls(kind, stream_events(kind, response.text))
    return tool_calls_of(kind, response.json())


def expected_text(kind: str, port: int) -> str:
    """The fake's plain reply text for the kind's default model."""
    model = chat_body(kind, [])["model"]
    return f"I am {model} on {kind} port {port}"


# -- tool calls ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_call_tools(fake_server: FakeServerFactory, kind: str, stream: bool) -> None:
    """CALL_TOOLS with three tools offered: two parallel calls of the first two tools, each
    with its own arguments, and the kind's tool stop reason."""
    fake = fake_server(kind)
    response = ask(fake.url, kind, ASK_TOOLS, stream, tools=tools_of(kind))
    assert calls_in(kind, response, stream) == TWO_CALLS
    if stream:
        events = stream_events(kind, response.text)
        if kind == "anthropic":
            assert events[-2]["delta"]["stop_reason"] == "tool_use"
        elif kind == "ollama":
            assert (events[-1]["done"], events[-1]["done_reason"]) == (True, "stop")
        else:
            finishes = [c["finish_reason"] for e in events for c in e["choices"]]
            assert finishes[-1] == "tool_calls"
        return
    body = response.json()
    if kind == "anthropic":
        assert body["stop_reason"] == "tool_use"
        assert all(b["id"].startswith("toolu_") for b in body["content"])
    elif kind == "ollama":
        assert body["done_reason"] == "stop"
        assert body["message"]["content"] == ""
    else:
        (choice,) = body["choices"]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"]["content"] == ("" if kind == "llamacpp" else None)
        ids = [c["id"] for c in choice["message"]["tool_calls"]]
        assert len(set(ids)) == 2 and all(ids)
        assert {c["type"] for c in choice["message"]["tool_calls"]} == {"function"}


@pytest.mark.parametrize("kind", OPENAI_STYLE)
def test_openai_style_tool_call_deltas(fake_server: FakeServerFactory, kind: str) -> None:
    """Streamed OpenAI-style calls: an opening delta (index, id, type, name; llama.cpp without
    the empty arguments), then argument fragments of 3-5 characters, one call after the other."""
    fake = fake_server(kind)
    response = ask(fake.url, kind, ASK_TOOLS, True, tools=tools_of(kind))
    deltas = [
        call
        for event in stream_events(kind, response.text)
        for choice in event["choices"]
        for call in choice["delta"].get("tool_calls", [])
    ]
    openings = [d for d in deltas if "id" in d]
    assert [d["index"] for d in openings] == [0, 1]
    for opening in openings:
        assert opening["type"] == "function"
        assert opening["function"]["name"] in ("get_weather", "get_time")
        assert ("arguments" in opening["function"]) == (kind != "llamacpp")
        assert opening["function"].get("arguments", "") == ""
    fragments = [d for d in deltas if "id" not in d]
    assert all(set(d) == {"index", "function"} for d in fragments)
    assert all(set(d["function"]) == {"arguments"} for d in fragments)
    sizes = [len(d["function"]["arguments"]) for d in fragments]
    assert all(3 <= size <= 5 for size in sizes[:-1]) and 0 < sizes[-1] <= 5
    indexes = [d["index"] for d in deltas]
    assert indexes == sorted(indexes), "calls are streamed one after the other"


@pytest.mark.parametrize("kind", OPENAI_STYLE)
def test_openai_style_interleaved_tool_calls(fake_server: FakeServerFactory, kind: str) -> None:
    """INTERLEAVE_TOOLS: both calls open first, then their fragments alternate; reassembled
    by index they are the same two calls."""
    fake = fake_server(kind)
    ask_both = [{"role": "user", "content": f"{CALL_TOOLS} {INTERLEAVE_TOOLS}"}]
    response = ask(fake.url, kind, ask_both, True, tools=tools_of(kind))
    events = stream_events(kind, response.text)
    deltas = [
        call
        for event in events
        for choice in event["choices"]
        for call in choice["delta"].get("tool_calls", [])
    ]
    assert [("id" in d, d["index"]) for d in deltas[:4]] == [
        (True, 0),
        (True, 1),
        (False, 0),
        (False, 1),
    ]
    assert streamed_tool_calls(kind, events) == TWO_CALLS


def test_llamacpp_tool_call_details(fake_server: FakeServerFactory) -> None:
    """llama.cpp (as its server code writes them): content "" beside tool calls, 32-character
    call ids, stream chunks keyed created, id, model, system_fingerprint, object."""
    fake = fake_server("llamacpp")
    whole = ask(fake.url, "llamacpp", ASK_TOOLS, tools=tools_of("llamacpp")).json()
    streamed = ask(fake.url, "llamacpp", ASK_TOOLS, True, tools=tools_of("llamacpp"))
    message = whole["choices"][0]["message"]
    assert message["content"] == ""
    assert all(len(c["id"]) == 32 and c["id"].isalnum() for c in message["tool_calls"])
    for chunk in stream_events("llamacpp", streamed.text):
        keys = list(chunk)
        assert keys[1:6] == ["created", "id", "model", "system_fingerprint", "object"]


def test_anthropic_tool_use_events(fake_server: FakeServerFactory) -> None:
    """Anthropic: per call content_block_start (tool_use, input {}), input_json_delta
    fragments (an empty one first), content_block_stop; then message_delta tool_use."""
    fake = fake_server("anthropic")
    response = ask(fake.url, "anthropic", ASK_TOOLS, True, tools=tools_of("anthropic"))
    events = stream_events("anthropic", response.text)
    names = [event for event, _ in parse_sse(response.text)]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [s["index"] for s in starts] == [0, 1]
    for start in starts:
        block = start["content_block"]
        assert set(block) == {"type", "id", "name", "input"}
        assert (block["type"], block["input"]) == ("tool_use", {})
    for index in (0, 1):
        deltas = [
            e["delta"] for e in events if e["type"] == "content_block_delta" and e["index"] == index
        ]
        assert {d["type"] for d in deltas} == {"input_json_delta"}
        assert deltas[0]["partial_json"] == ""
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert stops == [0, 1]
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}


def test_ollama_tool_calls_in_one_line(fake_server: FakeServerFactory) -> None:
    """Ollama streams whole calls in one line (content empty), then the done line."""
    fake = fake_server("ollama")
    response = ask(fake.url, "ollama", ASK_TOOLS, True, tools=tools_of("ollama"))
    lines = stream_events("ollama", response.text)
    with_calls = [line for line in lines if "tool_calls" in line["message"]]
    assert len(with_calls) == 1
    assert with_calls[0]["message"]["content"] == ""
    assert with_calls[0]["done"] is False
    assert lines[-1]["done"] is True


@pytest.mark.parametrize("kind", KINDS)
def test_call_tools_count_and_cycle(fake_server: FakeServerFactory, kind: str) -> None:
    """CALL_TOOLS:3 with two tools: three calls, the third calls the first tool again."""
    fake = fake_server(kind)
    ask3 = [{"role": "user", "content": f"{CALL_TOOLS}:3"}]
    response = ask(fake.url, kind, ask3, tools=tools_of(kind, ["get_weather", "get_time"]))
    assert calls_in(kind, response, False) == [
        *TWO_CALLS,
        ("get_weather", {"city": "Paris", "n": 3}),
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_no_tools_no_calls(fake_server: FakeServerFactory, kind: str) -> None:
    """CALL_TOOLS without tools, or tools without CALL_TOOLS: a plain text answer."""
    fake = fake_server(kind)
    no_tools = ask(fake.url, kind, ASK_TOOLS)
    no_trigger = ask(fake.url, kind, [{"role": "user", "content": "hi"}], tools=tools_of(kind))
    for response in (no_tools, no_trigger):
        assert reply_text(kind, response, False) == expected_text(kind, fake.port)


@pytest.mark.parametrize("kind", KINDS)
def test_tool_calls_setting(fake_server: FakeServerFactory, kind: str) -> None:
    """tool_calls=N (option, handle or POST /_fake/tool-calls) calls N tools without
    CALL_TOOLS; 0 switches it off."""
    fake = fake_server(kind, tool_calls=1)
    hi = [{"role": "user", "content": "hi"}]
    first = ask(fake.url, kind, hi, tools=tools_of(kind))
    fake.set_tool_calls(3)
    second = ask(fake.url, kind, hi, True, tools=tools_of(kind))
    with httpx.Client(timeout=5) as client:
        switched = client.post(fake.url + "/_fake/tool-calls", json={"count": 0})
        refused = client.post(fake.url + "/_fake/tool-calls", json={"count": -1})
    third = ask(fake.url, kind, hi, tools=tools_of(kind))
    assert calls_in(kind, first, False) == TWO_CALLS[:1]
    assert [name for name, _ in calls_in(kind, second, True)] == [
        "get_weather",
        "get_time",
        "get_news",
    ]
    assert switched.json()["tool_calls"] == 0
    assert refused.status_code == 400
    assert reply_text(kind, third, False) == expected_text(kind, fake.port)


# -- tool results and images -----------------------------------------------------------------


def tool_round(kind: str) -> list[dict[str, Any]]:
    """A conversation: the user asks, the assistant calls two tools, two results come back."""
    if kind == "anthropic":
        uses = [
            {"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": {"city": "Paris"}}
            for i, n in enumerate(("get_weather", "get_time"))
        ]
        results = [
            {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": "sunny"}
            for i in range(2)
        ]
        return [
            *ASK_TOOLS,
            {"role": "assistant", "content": uses},
            {"role": "user", "content": results},
        ]
    calls = [
        {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": "{}"}}
        for i, n in enumerate(("get_weather", "get_time"))
    ]
    if kind == "ollama":
        calls = [{"function": {"name": c["function"]["name"], "arguments": {}}} for c in calls]
    results = [{"role": "tool", "tool_call_id": f"call_{i}", "content": "sunny"} for i in range(2)]
    return [*ASK_TOOLS, {"role": "assistant", "content": "", "tool_calls": calls}, *results]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_tool_results_are_counted(fake_server: FakeServerFactory, kind: str, stream: bool) -> None:
    """A request carrying two tool results gets a text answer saying `tool results: 2`."""
    fake = fake_server(kind)
    response = ask(fake.url, kind, tool_round(kind), stream, tools=tools_of(kind))
    text = reply_text(kind, response, stream)
    assert text == expected_text(kind, fake.port) + "; tool results: 2"


def image_message(kind: str) -> dict[str, Any]:
    """A user message with one image, in the kind's format."""
    if kind == "anthropic":
        source = {"type": "base64", "media_type": "image/png", "data": PNG}
        return {
            "role": "user",
            "content": [{"type": "image", "source": source}, {"type": "text", "text": "what?"}],
        }
    if kind == "ollama":
        return {"role": "user", "content": "what?", "images": [PNG]}
    url = {"url": f"data:image/png;base64,{PNG}"}
    return {
        "role": "user",
        "content": [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": url}],
    }


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_images_are_counted(fake_server: FakeServerFactory, kind: str, stream: bool) -> None:
    """A request with images is accepted and the reply says how many it saw."""
    fake = fake_server(kind)
    messages = [image_message(kind), {"role": "assistant", "content": "ok"}, image_message(kind)]
    response = ask(fake.url, kind, messages, stream)
    assert reply_text(kind, response, stream) == expected_text(kind, fake.port) + "; images: 2"


def test_ollama_generate_images(fake_server: FakeServerFactory) -> None:
    """/api/generate counts the request's top-level images."""
    fake = fake_server("ollama")
    body = {"model": "llama3", "prompt": "what?", "images": [PNG], "stream": False}
    with httpx.Client(timeout=5) as client:
        response = client.post(fake.url + "/api/generate", json=body)
    assert response.json()["response"].endswith("; images: 1")


# -- stop sequences --------------------------------------------------------------------------


def stop_fields(kind: str, stops: list[str]) -> dict[str, Any]:
    """The request fields carrying stop sequences in the kind's format."""
    if kind == "anthropic":
        return {"stop_sequences": stops}
    if kind == "ollama":
        return {"options": {"stop": stops}}
    return {"stop": stops}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_stop_sequence_cuts(fake_server: FakeServerFactory, kind: str, stream: bool) -> None:
    """A stop sequence in the reply cuts it before the first one found; finish reason stop
    (Anthropic: stop_sequence, with the sequence named)."""
    fake = fake_server(kind)
    hi = [{"role": "user", "content": "hi"}]
    response = ask(fake.url, kind, hi, stream, **stop_fields(kind, ["zzz", " port", " on "]))
    model = chat_body(kind, [])["model"]
    assert reply_text(kind, response, stream) == f"I am {model}"
    if stream:
        events = stream_events(kind, response.text)
        if kind == "anthropic":
            assert events[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": " on "}
        elif kind == "ollama":
            assert events[-1]["done_reason"] == "stop"
        else:
            finishes = [c["finish_reason"] for e in events for c in e["choices"]]
            assert finishes[-1] == "stop"
        return
    body = response.json()
    if kind == "anthropic":
        assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", " on ")
    elif kind == "ollama":
        assert body["done_reason"] == "stop"
    else:
        assert body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("kind", KINDS)
def test_stop_sequence_absent(fake_server: FakeServerFactory, kind: str) -> None:
    """A stop sequence that is not in the reply changes nothing (Anthropic: end_turn)."""
    fake = fake_server(kind)
    response = ask(
        fake.url, kind, [{"role": "user", "content": "hi"}], **stop_fields(kind, ["zzz"])
    )
    assert reply_text(kind, response, False) == expected_text(kind, fake.port)
    if kind == "anthropic":
        assert (response.json()["stop_reason"], response.json()["stop_sequence"]) == (
            "end_turn",
            None,
        )


def test_openai_stop_as_string(fake_server: FakeServerFactory) -> None:
    """OpenAI's `stop` may be one string."""
    fake = fake_server("openai")
    response = ask(fake.url, "openai", [{"role": "user", "content": "hi"}], stop=" on ")
    assert reply_text("openai", response, False) == "I am gpt-4o-mini"


# -- usage chunk -----------------------------------------------------------------------------


def openai_stream(fake_url: str, kind: str, **extra: Any) -> list[dict[str, Any]]:
    """The chunks of an OpenAI-style stream (Ollama: its /v1), checked to end with [DONE]."""
    body = chat_body("openai", ASK_TOOLS, True, tools=tools_of("openai"), **extra)
    body["model"] = chat_body(kind, [])["model"]
    headers = {"Authorization": "Bearer sk-test"}
    with httpx.Client(timeout=5) as client:
        response = client.post(fake_url + "/v1/chat/completions", json=body, headers=headers)
    raw = parse_sse(response.text)
    assert raw[-1][1] == "[DONE]"
    return stream_events("openai", response.text)


@pytest.mark.parametrize("kind", [*OPENAI_STYLE, "ollama"])
def test_usage_chunk_only_when_asked(fake_server: FakeServerFactory, kind: str) -> None:
    """An OpenAI-style stream (tool calls included) has a usage chunk (choices []) just before
    [DONE] only with stream_options.include_usage; llama.cpp's last chunk carries timings."""
    fake = fake_server(kind)
    plain = openai_stream(fake.url, kind)
    asked = openai_stream(fake.url, kind, stream_options={"include_usage": True})
    assert all(chunk["choices"] and "usage" not in chunk for chunk in plain)
    assert ("timings" in plain[-1]) == (kind == "llamacpp")
    assert all(chunk["choices"] and "usage" not in chunk for chunk in asked[:-1])
    assert asked[-1]["choices"] == []
    usage = asked[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert streamed_tool_calls("openai", asked[:-1]) == TWO_CALLS
