"""Pure conversions between the OpenAI shape and each wire format (no server)."""

from __future__ import annotations

import json

import pytest

from routing.adapters import anthropic, ollama, openai
from routing.errors import BackendProtocolError, BackendUnavailable

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
}
HISTORY = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "weather?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]


def test_openai_to_wire_sets_model_and_stream() -> None:
    """The OpenAI body keeps the request, overriding model and stream."""
    body = openai.to_wire("m", {"model": "x", "messages": [], "temperature": 1}, stream=False)
    assert body == {"messages": [], "temperature": 1, "model": "m", "stream": False}


def test_openai_from_wire_rejects_wrong_shape() -> None:
    """A reply without choices is a protocol error."""
    with pytest.raises(BackendProtocolError):
        openai.from_wire({"id": "x"}, "k:i")


def test_openai_chunk_done_and_error() -> None:
    """``[DONE]`` ends a stream; an error object inside it is a protocol error."""
    assert openai.chunk_from_wire("[DONE]", "k:i") is None
    with pytest.raises(BackendProtocolError):
        openai.chunk_from_wire('{"error": {"message": "boom"}}', "k:i")


def test_ollama_tools_and_history_to_wire() -> None:
    """Tools pass through; tool-call arguments become objects; tool results keep content."""
    body = ollama.to_wire("llama3", {"messages": HISTORY, "tools": TOOLS}, stream=True)
    assert body["tools"] == TOOLS
    assert body["messages"][2]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    ]
    assert body["messages"][3] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}


def test_ollama_tool_call_reply_from_wire() -> None:
    """Ollama tool_calls become OpenAI tool_calls with JSON-string arguments."""
    reply = {
        "model": "llama3:latest",
        "done": True,
        "done_reason": "stop",
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
        },
        "prompt_eval_count": 10,
        "eval_count": 5,
    }
    out = ollama.from_wire(reply, "ollama:x")
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def test_ollama_done_reason_length() -> None:
    """done_reason ``length`` becomes finish_reason ``length``."""
    reply = {
        "model": "m",
        "done": True,
        "done_reason": "length",
        "message": {"role": "assistant", "content": "abc"},
    }
    assert ollama.from_wire(reply, "o:x")["choices"][0]["finish_reason"] == "length"


def test_ollama_stream_tool_call_chunks() -> None:
    """A streamed tool call yields a tool_calls delta, then finish tool_calls and usage."""
    conv = ollama.ChunkConverter("o:x", include_usage=True)
    first = conv.convert(
        {
            "model": "m",
            "done": False,
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
            },
        }
    )
    assert first[0]["choices"][0]["delta"]["role"] == "assistant"
    assert first[0]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
    last = conv.convert(
        {
            "model": "m",
            "done": True,
            "done_reason": "stop",
            "message": {"role": "assistant", "content": ""},
            "prompt_eval_count": 3,
            "eval_count": 4,
        }
    )
    assert last[0]["choices"][0]["finish_reason"] == "tool_calls"
    assert last[1]["choices"] == [] and last[1]["usage"]["total_tokens"] == 7
    assert conv.done


def test_ollama_response_format() -> None:
    """json_object becomes ``format: json``; a json_schema becomes the schema."""
    schema = {"type": "object"}
    assert (
        ollama.to_wire("m", {"response_format": {"type": "json_object"}}, stream=False)["format"]
        == "json"
    )
    assert (
        ollama.to_wire(
            "m",
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": schema},
                }
            },
            stream=False,
        )["format"]
        == schema
    )


def test_anthropic_tools_and_history_to_wire() -> None:
    """Tools get input_schema; tool calls become tool_use, results tool_result blocks."""
    body = anthropic.to_wire(
        "claude", {"messages": HISTORY, "tools": TOOLS, "tool_choice": "required"}, stream=False
    )
    assert body["system"] == "be brief"
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": TOOLS[0]["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "any"}
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}
        ],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}],
    }


def test_anthropic_merges_same_role_neighbours() -> None:
    """Two user messages in a row become one message with two blocks."""
    _, messages = anthropic.messages_to_wire(
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    )
    assert messages == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("stop_sequence", "stop"),
    ],
)
def test_anthropic_stop_reason(stop: str, finish: str) -> None:
    """stop_reason maps to the OpenAI finish_reason."""
    reply = {
        "id": "msg_1",
        "type": "message",
        "model": "c",
        "stop_reason": stop,
        "content": [{"type": "text", "text": "x"}],
        "usage": {"input_tokens": 2, "output_tokens": 3},
    }
    out = anthropic.from_wire(reply, "a:x")
    assert out["choices"][0]["finish_reason"] == finish
    assert out["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_anthropic_tool_use_reply_from_wire() -> None:
    """tool_use blocks become tool_calls with JSON-string arguments."""
    reply = {
        "id": "msg_1",
        "type": "message",
        "model": "c",
        "stop_reason": "tool_use",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}],
        "usage": {},
    }
    message = anthropic.from_wire(reply, "a:x")["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]


def test_anthropic_stream_tool_use_events() -> None:
    """Streamed tool_use blocks become tool_calls deltas with partial arguments."""
    conv = anthropic.EventConverter("a:x", include_usage=True)
    events = [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "c", "usage": {"input_tokens": 5}},
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"a": '},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "1}"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]
    chunks = [c for e in events for c in conv.convert(e["type"], e)]
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["id"] == "toolu_1" and calls[0]["function"]["name"] == "f"
    assert "".join(c["function"]["arguments"] for c in calls) == '{"a": 1}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}


def test_anthropic_stream_error_event() -> None:
    """An overloaded error event is BackendUnavailable; others are protocol errors."""
    conv = anthropic.EventConverter("a:x")
    with pytest.raises(BackendUnavailable):
        conv.convert(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
    with pytest.raises(BackendProtocolError):
        conv.convert("error", {"type": "error", "error": {"type": "api_error"}})


def test_anthropic_image_part() -> None:
    """A data-URL image part becomes a base64 image block."""
    blocks = anthropic.messages_to_wire(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ]
    )[1]
    assert blocks[0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
    }


@pytest.mark.parametrize(
    ("request_limits", "sent"),
    [
        ({}, 1024),
        ({"max_tokens": 0}, 0),
        ({"max_completion_tokens": 7}, 7),
        ({"max_tokens": 5, "max_completion_tokens": 9}, 5),
    ],
)
def test_anthropic_max_tokens_is_never_silently_changed(
    request_limits: dict[str, int], sent: int
) -> None:
    """max_tokens: 0 stays 0 (the backend answers for it); the default only when absent."""
    body = anthropic.to_wire(
        "c", {"messages": [{"role": "user", "content": "x"}], **request_limits}, stream=False
    )
    assert body["max_tokens"] == sent
