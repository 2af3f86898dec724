"""What an Anthropic Messages request may contain: :data:`ANTHROPIC_MESSAGES`, as data.

Built from the nodes of :mod:`routing._request_nodes`; named in
:data:`routing._request_specs.REQUESTS` (``"anthropic.messages"``) and re-exported there,
where :func:`~routing._request_specs.validate_request` checks a body against it.
"""

from __future__ import annotations

from routing._request_nodes import Arr, Bool, Int, Num, Obj, OneOf, Str, Tagged
from routing._request_specs_shared import JSON_SCHEMA

__all__ = ["ANTHROPIC_MESSAGES"]

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
                    "input_schema": JSON_SCHEMA,
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
