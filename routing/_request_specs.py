"""What each door's requests may contain: the descriptions the validator works from.

One description per operation, as data (nodes of :mod:`routing._request_nodes`), named in
:data:`REQUESTS`; :func:`validate_request` checks a parsed body against one of them and
raises :class:`~routing.errors.InvalidRequest` naming the first bad field.

This module holds the OpenAI descriptions (chat, text completions, embeddings), the registry
and the validators; the Anthropic Messages description lives in
:mod:`routing._request_specs_anthropic`, the Ollama ones in
:mod:`routing._request_specs_ollama`, the parts several APIs share (``stop``, a JSON schema,
``tools``) in :mod:`routing._request_specs_shared`. All are importable from here.

Adding a door (Anthropic Messages, embeddings, ``/api/generate`` ...) is adding data: build
its description from the nodes (reusing the shared parts where the APIs share them), add it
to :data:`REQUESTS` under a name, and call ``validate_request(name, body)`` where the door
reads its body.

Bounds follow the APIs' own documentation, but never more strictly than the most permissive
backend we route to would accept from a real client: ``stop`` has no length limit (OpenAI
allows 4, llama.cpp any number), ``max_tokens`` may be ``-1`` (llama.cpp's "no limit"),
roles and content-part types are open (chat templates define their own), and a backend
still answers for what only it knows (OpenAI's ``max_tokens >= 1``, Anthropic's
``temperature <= 1``: a 4xx passed through).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from routing._request_fields import compile_spec
from routing._request_nodes import Arr, Bool, Int, Node, Num, Obj, OneOf, Str, Tagged
from routing._request_specs_anthropic import ANTHROPIC_MESSAGES
from routing._request_specs_ollama import (
    OLLAMA_CHAT,
    OLLAMA_EMBED,
    OLLAMA_EMBEDDINGS,
    OLLAMA_GENERATE,
    OLLAMA_SHOW,
)
from routing._request_specs_ollama import OLLAMA_OPTIONS as OLLAMA_OPTIONS
from routing._request_specs_shared import JSON_SCHEMA, STOP, TOOLS

__all__ = [
    "ANTHROPIC_MESSAGES",
    "OLLAMA_CHAT",
    "OLLAMA_EMBED",
    "OLLAMA_EMBEDDINGS",
    "OLLAMA_GENERATE",
    "OLLAMA_PRIVATE",
    "OLLAMA_SHOW",
    "OPENAI_CHAT",
    "OPENAI_COMPLETION",
    "OPENAI_EMBEDDING",
    "REQUESTS",
    "TOOLS",
    "validate_request",
]

#: A key of the OpenAI-shaped request, private to ``routing``: what an Ollama client asked
#: for that has no OpenAI equivalent (other ``options``, ``keep_alive``, boolean ``think``,
#: unknown top-level fields), for the Ollama adapter to forward. Never sent to other APIs.
OLLAMA_PRIVATE = "_ollama"

# -- OpenAI chat completions ----------------------------------------------------------------

_PART = Tagged(
    "type",
    {
        "text": Obj({"text": Str()}, required=("text",)),
        "image_url": Obj(
            {"image_url": Obj({"url": Str(min_len=1), "detail": Str()}, required=("url",))},
            required=("image_url",),
        ),
        "input_audio": Obj(
            {"input_audio": Obj({"data": Str(), "format": Str()}, required=("data", "format"))},
            required=("input_audio",),
        ),
        "file": Obj(
            {"file": Obj({"file_data": Str(), "file_id": Str(), "filename": Str()})},
            required=("file",),
        ),
        "refusal": Obj({"refusal": Str()}, required=("refusal",)),
    },
    other=Obj({"type": Str()}, required=("type",)),
    what="a content part object",
)

_TOOL_CALL = Tagged(
    "type",
    {
        "function": Obj(
            {
                "id": Str(),
                "function": Obj(
                    {
                        "name": Str(min_len=1),
                        "arguments": Str(what="a string (JSON-encoded arguments)"),
                    },
                    required=("name",),
                ),
            },
            required=("function",),
        ),
    },
    other=Obj({"id": Str()}),
    absent="function",
)

_MESSAGE_FIELDS: dict[str, Node] = {
    "role": Str(),
    "content": OneOf((Str(), Arr(_PART)), what="a string or an array of content parts"),
    "name": Str(),
    "tool_calls": Arr(_TOOL_CALL),
    "tool_call_id": Str(),
    "refusal": Str(),
    "reasoning_content": Str(),
    "function_call": Obj({"name": Str(), "arguments": Str()}),
}

# ``content`` may be absent or null only in an assistant message (one that calls tools):
# OpenAI and llama.cpp both refuse other messages without it.
_OPENAI_MESSAGE = Tagged(
    "role",
    {
        "assistant": Obj(_MESSAGE_FIELDS, required=("role",)),
    },
    other=Obj(_MESSAGE_FIELDS, required=("role", "content")),
    what="a message object",
)

_TOOL_CHOICE = OneOf(
    (
        Str(one_of=("none", "auto", "required")),
        Tagged(
            "type",
            {
                "function": Obj(
                    {"function": Obj({"name": Str(min_len=1)}, required=("name",))},
                    required=("function",),
                )
            },
            other=Obj({"type": Str()}, required=("type",)),
        ),
    ),
    what="'none', 'auto', 'required' or an object",
)

_RESPONSE_FORMAT = Obj(
    {
        "type": Str(min_len=1),
        "json_schema": Obj(
            {"name": Str(), "description": Str(), "schema": JSON_SCHEMA, "strict": Bool()}
        ),
        "schema": JSON_SCHEMA,  # llama.cpp's json_object with a schema
    },
    required=("type",),
)

_MAX_TOKENS = Int(lo=-1)

OPENAI_CHAT = Obj(
    {
        "model": Str(min_len=1),
        "messages": Arr(_OPENAI_MESSAGE, min_items=1),
        "temperature": Num(0, 2),
        "top_p": Num(0, 1),
        "n": Int(lo=1),
        "max_tokens": _MAX_TOKENS,
        "max_completion_tokens": _MAX_TOKENS,
        "stop": STOP,
        "stream": Bool(),
        "stream_options": Obj({"include_usage": Bool()}),
        "tools": TOOLS,
        "tool_choice": _TOOL_CHOICE,
        "parallel_tool_calls": Bool(),
        "response_format": _RESPONSE_FORMAT,
        "seed": Int(),
        "presence_penalty": Num(-2, 2),
        "frequency_penalty": Num(-2, 2),
        "logit_bias": OneOf((Obj(), Arr()), what="an object or an array"),
        "logprobs": Bool(),
        "top_logprobs": Int(0, 20),
        "user": Str(),
        "reasoning_effort": Str(),
        "metadata": Obj(),
        "modalities": Arr(Str()),
        "store": Bool(),
        "top_k": Int(),  # not OpenAI's: llama.cpp, LM Studio; the Ollama/Anthropic adapters map it
        OLLAMA_PRIVATE: Obj({"options": Obj()}),
    },
    required=("messages",),
    what="a JSON object",
)

# -- OpenAI text completions and embeddings -------------------------------------------------

OPENAI_COMPLETION = Obj(
    {
        "model": Str(min_len=1),
        "prompt": OneOf((Str(), Arr()), what="a string or an array of strings or token ids"),
        "suffix": Str(),
        "max_tokens": _MAX_TOKENS,
        "temperature": Num(0, 2),
        "top_p": Num(0, 1),
        "top_k": Int(),
        "n": Int(lo=1),
        "best_of": Int(lo=1),
        "stream": Bool(),
        "stream_options": Obj({"include_usage": Bool()}),
        "logprobs": Int(0, 20),
        "echo": Bool(),
        "stop": STOP,
        "presence_penalty": Num(-2, 2),
        "frequency_penalty": Num(-2, 2),
        "logit_bias": OneOf((Obj(), Arr()), what="an object or an array"),
        "seed": Int(),
        "user": Str(),
        OLLAMA_PRIVATE: Obj({"options": Obj()}),
    },
    required=("prompt",),
    what="a JSON object",
)

OPENAI_EMBEDDING = Obj(
    {
        "model": Str(min_len=1),
        "input": OneOf(
            (Str(), Arr(min_items=1)), what="a string or an array of strings or token ids"
        ),
        "encoding_format": Str(one_of=("float", "base64")),
        "dimensions": Int(lo=1),
        "user": Str(),
        OLLAMA_PRIVATE: Obj({"options": Obj()}),
    },
    required=("input",),
    what="a JSON object",
)

# -- the registry ---------------------------------------------------------------------------

#: Every described request, by ``"api.operation"``.
REQUESTS: dict[str, Node] = {
    "openai.chat": OPENAI_CHAT,
    "openai.completion": OPENAI_COMPLETION,
    "openai.embedding": OPENAI_EMBEDDING,
    "anthropic.messages": ANTHROPIC_MESSAGES,
    "ollama.chat": OLLAMA_CHAT,
    "ollama.generate": OLLAMA_GENERATE,
    "ollama.embed": OLLAMA_EMBED,
    "ollama.embeddings": OLLAMA_EMBEDDINGS,
    "ollama.show": OLLAMA_SHOW,
}

_VALIDATORS: dict[str, Callable[[Any], None]] = {}


def validate_request(name: str, body: Any) -> None:
    """Check ``body`` against :data:`REQUESTS` ``[name]``; :class:`InvalidRequest` if wrong.

    Descriptions are compiled once, on first use.
    """
    validate = _VALIDATORS.get(name)
    if validate is None:
        validate = _VALIDATORS[name] = compile_spec(REQUESTS[name])
    validate(body)


#: The OpenAI chat check, compiled: the library's and the gateway's hot path.
validate_openai_chat = compile_spec(OPENAI_CHAT)
_VALIDATORS["openai.chat"] = validate_openai_chat
