"""Translation tables as tests: each field of each request and reply, mapped between the
Anthropic, OpenAI and Ollama shapes; what cannot be mapped is an InvalidRequest (a 400
naming the field), never dropped."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from routing._anthropic_convert import messages_to_chat
from routing._anthropic_reply import EventStream, chat_to_message
from routing._ollama_generate import embed_to_openai, embeddings_to_openai, generate_to_openai
from routing._operations import Operation
from routing._request_specs import OLLAMA_PRIVATE
from routing.adapters._ollama_ops import (
    completion_from_wire,
    completion_to_wire,
    embed_from_wire,
    embed_to_wire,
)
from routing.errors import InvalidRequest

BASE = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
USER = {"role": "user", "content": "hi"}

# -- Anthropic request -> OpenAI chat request ------------------------------------------------

ANTHROPIC_TO_OPENAI: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "system string",
        {"system": "Be brief."},
        {"messages": [{"role": "system", "content": "Be brief."}, USER]},
    ),
    (
        "system blocks (cache_control not sent)",
        {
            "system": [
                {"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "B"},
            ]
        },
        {"messages": [{"role": "system", "content": "A\n\nB"}, USER]},
    ),
    (
        "text and image blocks",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "see", "citations": []},
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/jpeg",
                                "data": "/9j/",
                            },
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    ],
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "see"},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                }
            ]
        },
    ),
    (
        "assistant tool_use, thinking; redacted_thinking not sent",
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "redacted_thinking", "data": "xx"},
                        {"type": "text", "text": "calling"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                    ],
                },
            ]
        },
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": "calling",
                    "reasoning_content": "hmm",
                    "tool_calls": [
                        {
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        }
                    ],
                },
            ]
        },
    ),
    (
        "tool_result before the user's text; is_error; its image follows",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "t2",
                            "is_error": True,
                            "content": [
                                {"type": "text", "text": "boom"},
                                {
                                    "type": "image",
                                    "source": {"type": "url", "url": "https://x/e.png"},
                                },
                            ],
                        },
                        {"type": "text", "text": "go on"},
                    ],
                }
            ]
        },
        {
            "messages": [
                {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "t2", "content": "Error: boom"},
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x/e.png"}},
                        {"type": "text", "text": "go on"},
                    ],
                },
            ]
        },
    ),
    ("max_tokens 0 stays 0", {"max_tokens": 0}, {"max_tokens": 0}),
    (
        "sampling",
        {"temperature": 0.5, "top_p": 0.9, "top_k": 40},
        {"temperature": 0.5, "top_p": 0.9, "top_k": 40},
    ),
    ("stop_sequences", {"stop_sequences": ["END"]}, {"stop": ["END"]}),
    ("metadata.user_id", {"metadata": {"user_id": "u1"}}, {"user": "u1"}),
    (
        "tools",
        {
            "tools": [
                {
                    "name": "f",
                    "description": "d",
                    "cache_control": {"type": "x"},
                    "input_schema": {"type": "object"},
                }
            ]
        },
        {
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "f", "parameters": {"type": "object"}, "description": "d"},
                }
            ]
        },
    ),
    ("tool_choice any", {"tool_choice": {"type": "any"}}, {"tool_choice": "required"}),
    (
        "tool_choice tool, no parallel",
        {"tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True}},
        {
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": False,
        },
    ),
    ("tool_choice none", {"tool_choice": {"type": "none"}}, {"tool_choice": "none"}),
    (
        "thinking enabled",
        {"thinking": {"type": "enabled", "budget_tokens": 8000}},
        {"reasoning_effort": "medium", OLLAMA_PRIVATE: {"think": True}},
    ),
    ("thinking disabled", {"thinking": {"type": "disabled"}}, {OLLAMA_PRIVATE: {"think": False}}),
    ("stream", {"stream": True}, {"stream": True}),
    ("service hints not sent", {"service_tier": "auto", "context_management": {}}, {}),
    ("unknown fields passed through", {"x_custom": {"k": 1}}, {"x_custom": {"k": 1}}),
]


@pytest.mark.parametrize(
    ("name", "given", "expected"), ANTHROPIC_TO_OPENAI, ids=[c[0] for c in ANTHROPIC_TO_OPENAI]
)
def test_anthropic_request_to_openai(
    name: str, given: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Each Anthropic request field becomes its OpenAI chat counterpart (table above)."""
    chat = messages_to_chat({**BASE, **given})
    assert chat == {"model": "m", "messages": [USER], **expected}


UNMAPPABLE = [
    (
        "document block",
        {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
        "messages[0].content[0].type",
    ),
    (
        "search_result in a tool result",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [{"type": "search_result", "source": "s"}],
                        }
                    ],
                }
            ]
        },
        "messages[0].content[0].content[0].type",
    ),
    (
        "server tool",
        {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        "tools[0].type",
    ),
    (
        "server_tool_use in history",
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": [
                        {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}
                    ],
                },
            ]
        },
        "messages[1].content[0].type",
    ),
    (
        "image by file id",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                }
            ]
        },
        "messages[0].content[0].source.type",
    ),
    ("mcp_servers", {"mcp_servers": [{"type": "url", "url": "https://x"}]}, "mcp_servers"),
    ("container", {"container": "c1"}, "container"),
]


@pytest.mark.parametrize(("name", "given", "param"), UNMAPPABLE, ids=[c[0] for c in UNMAPPABLE])
def test_anthropic_unmappable_is_a_400(name: str, given: dict[str, Any], param: str) -> None:
    """What has no OpenAI form is refused, naming the field."""
    with pytest.raises(InvalidRequest) as info:
        messages_to_chat({**BASE, **given})
    assert info.value.param == param and param in str(info.value)


# -- OpenAI chat reply -> Anthropic message --------------------------------------------------


def _reply(message: dict[str, Any], finish: str = "stop", **usage: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "model": "m",
        "choices": [{"message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, **usage},
    }


OPENAI_TO_ANTHROPIC: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "text, end_turn, usage",
        _reply({"content": "hi"}),
        {
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 3},
        },
    ),
    (
        "reasoning first, length",
        _reply({"content": "x", "reasoning_content": "r"}, "length"),
        {
            "content": [
                {"type": "thinking", "thinking": "r", "signature": ""},
                {"type": "text", "text": "x"},
            ],
            "stop_reason": "max_tokens",
            "usage": {"input_tokens": 5, "output_tokens": 3},
        },
    ),
    (
        "tool calls, arguments parsed; not JSON kept raw",
        _reply(
            {
                "content": None,
                "tool_calls": [
                    {"id": "a", "function": {"name": "f", "arguments": '{"n": 1}'}},
                    {"id": "b", "function": {"name": "g", "arguments": "oops"}},
                ],
            },
            "tool_calls",
        ),
        {
            "content": [
                {"type": "tool_use", "id": "a", "name": "f", "input": {"n": 1}},
                {"type": "tool_use", "id": "b", "name": "g", "input": {"_raw": "oops"}},
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 5, "output_tokens": 3},
        },
    ),
    (
        "content filter, cached tokens",
        _reply({"content": ""}, "content_filter", prompt_tokens_details={"cached_tokens": 2}),
        {
            "content": [],
            "stop_reason": "refusal",
            "usage": {"input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": 2},
        },
    ),
]


@pytest.mark.parametrize(
    ("name", "reply", "expected"), OPENAI_TO_ANTHROPIC, ids=[c[0] for c in OPENAI_TO_ANTHROPIC]
)
def test_openai_reply_to_anthropic(
    name: str, reply: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Each OpenAI reply field becomes its Anthropic message counterpart."""
    assert chat_to_message(reply) == {
        "id": "c1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "stop_sequence": None,
        **expected,
    }


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c1", "model": "m", "choices": [{"delta": delta, "finish_reason": finish}]}


def test_stream_translation_keeps_thinking_text_and_interleaved_tool_calls() -> None:
    """Chunks become Anthropic's events: thinking then text blocks, tool calls reassembled
    by index (interleaved fragments included) into whole tool_use blocks, then usage."""
    stream = EventStream()
    events: list[dict[str, Any]] = []
    for chunk in (
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"reasoning_content": "let me "}),
        _chunk({"reasoning_content": "see"}),
        _chunk({"content": "Calling"}),
        _chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"n"'}}
                ]
            }
        ),
        _chunk(
            {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        _chunk({}, "tool_calls"),
        {
            "id": "c1",
            "model": "m",
            "choices": [],
            "usage": {"prompt_tokens": 7, "completion_tokens": 4},
        },
    ):
        events += stream.chunk(chunk)
    events += stream.end()
    kinds = [
        (e["type"], e.get("index"), (e.get("delta") or e.get("content_block") or {}).get("type"))
        for e in events
    ]
    assert kinds == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"),
        ("ping", None, None),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("content_block_start", 3, "tool_use"),
        ("content_block_delta", 3, "input_json_delta"),
        ("content_block_stop", 3, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    first_tool = "".join(
        e["delta"]["partial_json"]
        for e in events
        if e.get("index") == 2 and e["type"] == "content_block_delta"
    )
    assert first_tool == '{"n": 1}'
    assert events[9]["content_block"] == {"type": "tool_use", "id": "a", "name": "f", "input": {}}
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"] == {"input_tokens": 7, "output_tokens": 4}


def _call(index: int, arguments: str, id: str = "", name: str = "") -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id:
        call["id"] = id
    if name:
        call["function"]["name"] = name
    return _chunk({"tool_calls": [call]})


def _seen(events: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """(type, block index, start block's id or delta's partial_json) of each event."""
    out = []
    for e in events:
        detail = (e.get("content_block") or {}).get(
            "id", (e.get("delta") or {}).get("partial_json")
        )
        out.append((e["type"], e.get("index"), detail))
    return out


def test_stream_translation_streams_each_tool_call_as_it_comes() -> None:
    """Calls one after the other: a tool_use block starts with the delta naming its call,
    each fragment is an input_json_delta at once, and the block stops when the next starts."""
    stream = EventStream()
    stream.chunk(_chunk({"role": "assistant", "content": ""}))
    per_chunk = [
        stream.chunk(c)
        for c in (
            _call(0, "", id="a", name="f"),
            _call(0, '{"n"'),
            _call(0, ": 1}"),
            _call(1, '{"m": 2}', id="b", name="g"),
            _chunk({}, "tool_calls"),
        )
    ]
    assert [_seen(events) for events in per_chunk] == [
        [("content_block_start", 0, "a"), ("ping", None, None)],
        [("content_block_delta", 0, '{"n"')],
        [("content_block_delta", 0, ": 1}")],
        [
            ("content_block_stop", 0, None),
            ("content_block_start", 1, "b"),
            ("content_block_delta", 1, '{"m": 2}'),
        ],
        [],
    ]
    assert _seen(stream.end())[:2] == [
        ("content_block_stop", 1, None),
        ("message_delta", None, None),
    ]


def test_stream_translation_holds_calls_interleaved_or_late() -> None:
    """A call starting while the open one's arguments are not whole JSON yet is held and sent
    whole at the end (so are the calls after it); the open one keeps streaming.  A fragment
    for a call already closed comes as a block of its own at the end."""
    stream = EventStream()
    events = stream.chunk(_call(0, '{"a"', id="a", name="f"))
    events += stream.chunk(_call(1, "", id="b", name="g"))  # call 0 is not whole: held
    events += stream.chunk(_call(0, ": 1}"))
    events += stream.chunk(_call(1, "{}"))
    events += stream.chunk(_call(2, "{}", id="c", name="h"))  # after a held call: held
    assert _seen(events)[3:] == [
        ("content_block_delta", 0, '{"a"'),
        ("content_block_delta", 0, ": 1}"),
    ]
    closing = stream.end()
    assert _seen(closing)[:7] == [
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "b"),
        ("content_block_delta", 1, "{}"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "c"),
        ("content_block_delta", 2, "{}"),
        ("content_block_stop", 2, None),
    ]
    late = EventStream()
    events = late.chunk(_call(0, "{}", id="a", name="f"))
    events += late.chunk(_call(1, "{}", id="b", name="g"))  # call 0 was whole: closed
    events += late.chunk(_call(0, " "))
    assert [e["type"] for e in events].count("content_block_start") == 2
    assert _seen(late.end())[:4] == [
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "a"),
        ("content_block_delta", 2, " "),
        ("content_block_stop", 2, None),
    ]


def test_stream_translation_holds_a_call_named_late() -> None:
    """A call whose first delta has no name is held until the end, named by later deltas;
    dict arguments are sent as their JSON text."""
    stream = EventStream()
    assert _seen(stream.chunk(_call(0, "", id="a"))) == [("message_start", None, None)]
    stream.chunk(
        _chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": {"x": 1}}}]})
    )
    closing = stream.end()
    assert closing[0]["content_block"] == {"type": "tool_use", "id": "a", "name": "f", "input": {}}
    assert _seen(closing)[2:4] == [
        ("content_block_delta", 0, '{"x": 1}'),
        ("content_block_stop", 0, None),
    ]
    assert closing[-2]["delta"]["stop_reason"] == "tool_use"


# -- Ollama generate / embed -> OpenAI -------------------------------------------------------

OLLAMA_TO_OPENAI: list[tuple[str, dict[str, Any], Operation, dict[str, Any]]] = [
    (
        "generate: system and prompt",
        {"system": "S", "prompt": "P", "stream": False},
        Operation.CHAT,
        {
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "P"}],
            "stream": False,
        },
    ),
    (
        "generate: images",
        {"prompt": "P", "images": ["iVBORw0KGgo="]},
        Operation.CHAT,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "P"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                        },
                    ],
                }
            ],
            "stream": True,
        },
    ),
    (
        "generate: format, options, think, keep_alive",
        {
            "prompt": "P",
            "format": "json",
            "keep_alive": "5m",
            "think": True,
            "options": {"temperature": 0.1, "num_predict": 9, "num_ctx": 4096},
        },
        Operation.CHAT,
        {
            "messages": [{"role": "user", "content": "P"}],
            "stream": True,
            "response_format": {"type": "json_object"},
            "temperature": 0.1,
            "max_tokens": 9,
            OLLAMA_PRIVATE: {"options": {"num_ctx": 4096}, "keep_alive": "5m", "think": True},
        },
    ),
    (
        "generate raw: a text completion",
        {
            "prompt": "x =",
            "raw": True,
            "stream": False,
            "options": {"stop": ["\n"], "num_predict": 4, "mirostat": 1},
        },
        Operation.COMPLETION,
        {
            "prompt": "x =",
            "stream": False,
            "stop": ["\n"],
            "max_tokens": 4,
            OLLAMA_PRIVATE: {"options": {"mirostat": 1}, "raw": True},
        },
    ),
    (
        "generate suffix: a text completion",
        {"prompt": "def f(", "suffix": "):"},
        Operation.COMPLETION,
        {"prompt": "def f(", "suffix": "):", "stream": True},
    ),
]


@pytest.mark.parametrize(
    ("name", "given", "operation", "expected"),
    OLLAMA_TO_OPENAI,
    ids=[c[0] for c in OLLAMA_TO_OPENAI],
)
def test_ollama_generate_to_openai(
    name: str, given: dict[str, Any], operation: Operation, expected: dict[str, Any]
) -> None:
    """generate becomes chat, or a text completion when raw or with a suffix."""
    assert generate_to_openai({"model": "m", **given}) == (operation, {"model": "m", **expected})


@pytest.mark.parametrize(
    ("given", "param"),
    [
        ({"prompt": "P", "context": [1, 2]}, "context"),
        ({"prompt": "P", "template": "{{ .Prompt }}"}, "template"),
        ({"prompt": "P", "raw": True, "system": "S"}, "system"),
        ({"prompt": "P", "raw": True, "images": ["aGk="]}, "images"),
        ({"prompt": "P", "suffix": ")", "format": "json"}, "format"),
    ],
    ids=["context", "template", "raw+system", "raw+images", "suffix+format"],
)
def test_ollama_generate_unmappable_is_a_400(given: dict[str, Any], param: str) -> None:
    """What generate cannot carry through the gateway is refused, naming the field."""
    with pytest.raises(InvalidRequest) as info:
        generate_to_openai({"model": "m", **given})
    assert info.value.param == param


def test_ollama_embed_to_openai() -> None:
    """embed and the legacy embeddings become OpenAI embeddings requests (floats asked)."""
    assert embed_to_openai(
        {"model": "m", "input": ["a"], "dimensions": 8, "truncate": False, "keep_alive": 0}
    ) == {
        "model": "m",
        "input": ["a"],
        "encoding_format": "float",
        "dimensions": 8,
        OLLAMA_PRIVATE: {"truncate": False, "keep_alive": 0},
    }
    assert embeddings_to_openai({"model": "m", "prompt": "a"}) == {
        "model": "m",
        "input": "a",
        "encoding_format": "float",
    }


# -- OpenAI completions / embeddings <-> Ollama's API (the Ollama adapter) -------------------


def test_openai_completion_to_ollama_generate_and_back() -> None:
    """A text completion goes out as a raw generate (options mapped), and comes back."""
    body = completion_to_wire(
        "m",
        {
            "prompt": ["x ="],
            "max_tokens": 4,
            "temperature": 0.2,
            "top_p": 0.5,
            "seed": 7,
            "stop": "\n",
            "top_k": 3,
            "user": "u",
            "x_new": 1,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            OLLAMA_PRIVATE: {"keep_alive": "1m", "options": {"num_ctx": 64}},
        },
        stream=False,
    )
    assert body == {
        "model": "m",
        "prompt": "x =",
        "stream": False,
        "raw": True,
        "keep_alive": "1m",
        "x_new": 1,
        "options": {
            "num_ctx": 64,
            "num_predict": 4,
            "temperature": 0.2,
            "top_p": 0.5,
            "seed": 7,
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
            "top_k": 3,
            "stop": ["\n"],
        },
    }
    reply = completion_from_wire(
        {
            "model": "m",
            "response": "1",
            "done_reason": "length",
            "prompt_eval_count": 3,
            "eval_count": 1,
        },
        "o:a",
    )
    assert reply["choices"] == [
        {"text": "1", "index": 0, "logprobs": None, "finish_reason": "length"}
    ]
    assert reply["usage"] == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    assert reply["object"] == "text_completion"


@pytest.mark.parametrize(
    ("given", "param"),
    [
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [1, 2]}, "prompt"),
        ({"prompt": "a", "n": 2}, "n"),
        ({"prompt": "a", "best_of": 3}, "best_of"),
        ({"prompt": "a", "echo": True}, "echo"),
        ({"prompt": "a", "logprobs": 2}, "logprobs"),
        ({"prompt": "a", "logit_bias": {"50256": -100}}, "logit_bias"),
    ],
    ids=["several prompts", "token ids", "n", "best_of", "echo", "logprobs", "logit_bias"],
)
def test_openai_completion_unmappable_to_ollama(given: dict[str, Any], param: str) -> None:
    """A completion Ollama cannot make is refused, naming the field."""
    with pytest.raises(InvalidRequest) as info:
        completion_to_wire("m", given, stream=False)
    assert info.value.param == param


def test_openai_embeddings_to_ollama_embed_and_back() -> None:
    """Embeddings go out as /api/embed and come back in OpenAI's shape, base64 on request."""
    assert embed_to_wire(
        "m",
        {
            "input": "a",
            "dimensions": 2,
            "user": "u",
            "x_new": 1,
            OLLAMA_PRIVATE: {"truncate": True},
        },
    ) == {"model": "m", "input": ["a"], "dimensions": 2, "truncate": True, "x_new": 1}
    wire = {"model": "m", "embeddings": [[0.5, -1.0]], "prompt_eval_count": 2}
    floats = embed_from_wire(wire, "o:a", {})
    assert floats == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]}],
        "model": "m",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    packed = embed_from_wire(wire, "o:a", {"encoding_format": "base64"})["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(packed)) == (0.5, -1.0)
    with pytest.raises(InvalidRequest) as info:
        embed_to_wire("m", {"input": [[1, 2]]})
    assert info.value.param == "input"
