"""What each door's requests may contain: the descriptions the validator works from.

One description per operation, as data (nodes of :mod:`routing._request_fields`), named in
:data:`REQUESTS`; :func:`validate_request` checks a parsed body against one of them and
raises :class:`~routing.errors.InvalidRequest` naming the first bad field.

Adding a door (Anthropic Messages, embeddings, ``/api/generate`` ...) is adding data: build
its description from the nodes (reusing the parts below where the APIs share them), add it to
:data:`REQUESTS` under a name, and call ``validate_request(name, body)`` where the door reads
its body.

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

from routing._request_fields import (
    Arr,
    Bool,
    Int,
    Node,
    Num,
    Obj,
    OneOf,
    Str,
    Tagged,
    compile_spec,
)

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

_STOP = OneOf((Str(), Arr(Str())))
_JSON_SCHEMA = Obj(what="an object (a JSON schema)")

# -- shared by OpenAI and Ollama ------------------------------------------------------------

_FUNCTION = Obj(
    {"name": Str(min_len=1), "description": Str(), "parameters": _JSON_SCHEMA, "strict": Bool()},
    required=("name",),
)

#: ``tools``: function tools (a missing ``type`` means ``function``); other tool types open.
TOOLS = Arr(
    Tagged(
        "type",
        {"function": Obj({"function": _FUNCTION}, required=("function",))},
        other=Obj(),
        absent="function",
    )
)

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
            {"name": Str(), "description": Str(), "schema": _JSON_SCHEMA, "strict": Bool()}
        ),
        "schema": _JSON_SCHEMA,  # llama.cpp's json_object with a schema
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
        "stop": _STOP,
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

# -- Ollama /api/chat -----------------------------------------------------------------------

_OLLAMA_INT = Int(integral_float=True)
_OLLAMA_NUM = Num()

#: ``options`` of Ollama (its ``api.Options`` and runner options). Those with an OpenAI
#: equivalent carry OpenAI's bounds, as they become OpenAI fields; unknown options pass.
OLLAMA_OPTIONS = Obj(
    {
        "temperature": Num(0, 2),
        "top_p": Num(0, 1),
        "presence_penalty": Num(-2, 2),
        "frequency_penalty": Num(-2, 2),
        "seed": _OLLAMA_INT,
        "num_predict": _OLLAMA_INT,
        "stop": _STOP,
        "top_k": _OLLAMA_INT,
        "min_p": _OLLAMA_NUM,
        "typical_p": _OLLAMA_NUM,
        "repeat_penalty": _OLLAMA_NUM,
        "repeat_last_n": _OLLAMA_INT,
        "tfs_z": _OLLAMA_NUM,
        "mirostat": _OLLAMA_INT,
        "mirostat_tau": _OLLAMA_NUM,
        "mirostat_eta": _OLLAMA_NUM,
        "num_keep": _OLLAMA_INT,
        "num_ctx": _OLLAMA_INT,
        "num_batch": _OLLAMA_INT,
        "num_gpu": _OLLAMA_INT,
        "main_gpu": _OLLAMA_INT,
        "num_thread": _OLLAMA_INT,
        "penalize_newline": Bool(),
        "numa": Bool(),
        "low_vram": Bool(),
        "f16_kv": Bool(),
        "vocab_only": Bool(),
        "use_mmap": Bool(),
        "use_mlock": Bool(),
        "logits_all": Bool(),
    }
)

_OLLAMA_TOOL_CALL = Obj(
    {
        "id": Str(),
        "function": Obj(
            {"name": Str(min_len=1), "arguments": Obj(what="an object"), "index": Int()},
            required=("name",),
        ),
    },
    required=("function",),
)

_OLLAMA_MESSAGE = Obj(
    {
        "role": Str(),
        "content": Str(),
        "images": Arr(Str(min_len=1, what="a base64 string")),
        "tool_calls": Arr(_OLLAMA_TOOL_CALL),
        "tool_name": Str(),
        "tool_call_id": Str(),
        "thinking": Str(),
    },
    required=("role",),
    what="a message object",
)

OLLAMA_CHAT = Obj(
    {
        "model": Str(min_len=1),
        "messages": Arr(_OLLAMA_MESSAGE, min_items=1),
        "tools": TOOLS,
        "format": OneOf(
            (Str(one_of=("", "json")), _JSON_SCHEMA), what="'json' or an object (a JSON schema)"
        ),
        "options": OLLAMA_OPTIONS,
        "stream": Bool(),
        "keep_alive": OneOf((Str(), Num()), what="a duration string or a number of seconds"),
        "think": OneOf(
            (Bool(), Str(one_of=("high", "medium", "low"))),
            what="a boolean or 'high', 'medium', 'low'",
        ),
    },
    required=("model", "messages"),
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
        "stop": _STOP,
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

# -- Anthropic Messages ---------------------------------------------------------------------

_TYPED = Obj({"type": Str()}, required=("type",))
_A_TEXT = Obj({"text": Str(), "cache_control": Obj(), "citations": Arr()}, required=("text",))
_A_IMAGE = Obj(
    {
        "source": Tagged(
            "type",
            {
                "base64": Obj(
                    {"media_type": Str(), "data": Str()}, required=("media_type", "data")
                ),
                "url": Obj({"url": Str(min_len=1)}, required=("url",)),
            },
            other=_TYPED,
        )
    },
    required=("source",),
)
_A_INNER = Arr(
    Tagged(
        "type", {"text": _A_TEXT, "image": _A_IMAGE}, other=_TYPED, what="a content block object"
    )
)
_A_BLOCK = Tagged(
    "type",
    {
        "text": _A_TEXT,
        "image": _A_IMAGE,
        "tool_use": Obj(
            {"id": Str(min_len=1), "name": Str(min_len=1), "input": Obj(what="an object")},
            required=("id", "name", "input"),
        ),
        "tool_result": Obj(
            {
                "tool_use_id": Str(min_len=1),
                "content": OneOf((Str(), _A_INNER), what="a string or an array of content blocks"),
                "is_error": Bool(),
            },
            required=("tool_use_id",),
        ),
        "thinking": Obj({"thinking": Str(), "signature": Str()}, required=("thinking",)),
        "redacted_thinking": Obj({"data": Str()}, required=("data",)),
    },
    other=_TYPED,
    what="a content block object",
)

ANTHROPIC_MESSAGES = Obj(
    {
        "model": Str(min_len=1),
        "messages": Arr(
            Obj(
                {
                    "role": Str(one_of=("user", "assistant")),
                    "content": OneOf(
                        (Str(), Arr(_A_BLOCK)), what="a string or an array of content blocks"
                    ),
                },
                required=("role", "content"),
                what="a message object",
            ),
            min_items=1,
        ),
        "max_tokens": Int(lo=0),
        "system": OneOf(
            (Str(), Arr(Tagged("type", {"text": _A_TEXT}, other=_TYPED))),
            what="a string or an array of text blocks",
        ),
        "metadata": Obj({"user_id": Str()}),
        "stop_sequences": Arr(Str()),
        "stream": Bool(),
        "temperature": Num(0, 2),
        "top_p": Num(0, 1),
        "top_k": Int(lo=0),
        "tools": Arr(
            Obj(
                {
                    "name": Str(min_len=1),
                    "description": Str(),
                    "type": Str(),
                    "input_schema": _JSON_SCHEMA,
                    "cache_control": Obj(),
                },
                required=("name",),
                what="a tool object",
            )
        ),
        "tool_choice": Tagged(
            "type",
            {
                "auto": Obj({"disable_parallel_tool_use": Bool()}),
                "any": Obj({"disable_parallel_tool_use": Bool()}),
                "none": Obj(),
                "tool": Obj(
                    {"name": Str(min_len=1), "disable_parallel_tool_use": Bool()},
                    required=("name",),
                ),
            },
            other=_TYPED,
        ),
        "thinking": Tagged(
            "type",
            {
                "enabled": Obj({"budget_tokens": Int(lo=0)}, required=("budget_tokens",)),
                "disabled": Obj(),
            },
            other=_TYPED,
        ),
    },
    required=("model", "messages"),
    what="a JSON object",
)

# -- Ollama generate, embed, show -----------------------------------------------------------

_OLLAMA_FORMAT = OneOf(
    (Str(one_of=("", "json")), _JSON_SCHEMA), what="'json' or an object (a JSON schema)"
)
_KEEP_ALIVE = OneOf((Str(), Num()), what="a duration string or a number of seconds")
_THINK = OneOf(
    (Bool(), Str(one_of=("high", "medium", "low"))), what="a boolean or 'high', 'medium', 'low'"
)

OLLAMA_GENERATE = Obj(
    {
        "model": Str(min_len=1),
        "prompt": Str(),
        "suffix": Str(),
        "system": Str(),
        "template": Str(),
        "context": Arr(Int()),
        "stream": Bool(),
        "raw": Bool(),
        "format": _OLLAMA_FORMAT,
        "images": Arr(Str(min_len=1, what="a base64 string")),
        "options": OLLAMA_OPTIONS,
        "keep_alive": _KEEP_ALIVE,
        "think": _THINK,
    },
    required=("model",),
    what="a JSON object",
)

OLLAMA_EMBED = Obj(
    {
        "model": Str(min_len=1),
        "input": OneOf((Str(), Arr(Str())), what="a string or an array of strings"),
        "truncate": Bool(),
        "dimensions": Int(lo=1),
        "options": OLLAMA_OPTIONS,
        "keep_alive": _KEEP_ALIVE,
    },
    required=("model", "input"),
    what="a JSON object",
)

OLLAMA_EMBEDDINGS = Obj(
    {
        "model": Str(min_len=1),
        "prompt": Str(),
        "options": OLLAMA_OPTIONS,
        "keep_alive": _KEEP_ALIVE,
    },
    required=("model", "prompt"),
    what="a JSON object",
)

OLLAMA_SHOW = Obj(
    {"model": Str(min_len=1), "name": Str(min_len=1), "verbose": Bool()}, what="a JSON object"
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
