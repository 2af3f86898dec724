"""What Ollama's requests may contain: chat, generate, embed, embeddings and show, as data.

Built from the nodes of :mod:`routing._request_nodes`, with the ``options`` they share
(:data:`OLLAMA_OPTIONS`); named in :data:`routing._request_specs.REQUESTS` (``"ollama.*"``)
and re-exported there, where :func:`~routing._request_specs.validate_request` checks a body
against them.
"""

from __future__ import annotations

from routing._request_nodes import Arr, Bool, Int, Num, Obj, OneOf, Str
from routing._request_specs_shared import JSON_SCHEMA, STOP, TOOLS

__all__ = [
    "OLLAMA_CHAT",
    "OLLAMA_EMBED",
    "OLLAMA_EMBEDDINGS",
    "OLLAMA_GENERATE",
    "OLLAMA_OPTIONS",
    "OLLAMA_SHOW",
]

# -- options --------------------------------------------------------------------------------

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
        "stop": STOP,
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

# -- chat -----------------------------------------------------------------------------------

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
            (Str(one_of=("", "json")), JSON_SCHEMA), what="'json' or an object (a JSON schema)"
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

# -- generate, embed, show ------------------------------------------------------------------

_OLLAMA_FORMAT = OneOf(
    (Str(one_of=("", "json")), JSON_SCHEMA), what="'json' or an object (a JSON schema)"
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
