"""Request parts several API styles share: ``stop``, a JSON schema, function ``tools``.

Built from the nodes of :mod:`routing._request_nodes`; the OpenAI descriptions
(:mod:`routing._request_specs`), the Ollama ones (:mod:`routing._request_specs_ollama`) and
the Anthropic one (:mod:`routing._request_specs_anthropic`) take them from here.
"""

from __future__ import annotations

from routing._request_nodes import Arr, Bool, Obj, OneOf, Str, Tagged

__all__ = ["JSON_SCHEMA", "STOP", "TOOLS"]

#: ``stop``: one string or several (no length limit: llama.cpp takes any number).
STOP = OneOf((Str(), Arr(Str())))

#: A JSON schema: any object (the backend judges its content).
JSON_SCHEMA = Obj(what="an object (a JSON schema)")

_FUNCTION = Obj(
    {"name": Str(min_len=1), "description": Str(), "parameters": JSON_SCHEMA, "strict": Bool()},
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
