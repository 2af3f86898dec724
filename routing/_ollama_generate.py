"""Ollama ``generate`` and ``embed`` requests as the OpenAI-shaped requests the router serves.

The body is checked first (:data:`routing._request_specs.OLLAMA_GENERATE`, ``OLLAMA_EMBED``,
``OLLAMA_EMBEDDINGS``).  Nothing the client sent is dropped silently:

================================  ===========================================================
Ollama                            OpenAI request
================================  ===========================================================
generate, ``raw: false``          chat (operation ``chat``): ``system`` a system message,
                                  ``prompt`` (with ``images``) the user message; ``format``,
                                  ``options``, ``think``, ``keep_alive`` as for Ollama chat
generate, ``raw: true`` or a      text completion (operation ``completion``): ``prompt``,
``suffix``                        ``suffix``; ``options`` temperature, top_p, top_k, seed,
                                  stop, num_predict >= 0 (``max_tokens``), penalties; other
                                  options, ``raw``, ``keep_alive`` ride along for Ollama
                                  backends
generate ``context``              a 400: token ids of an earlier answer exist only on the
                                  server that made them (send the conversation to chat)
generate ``template``             a 400: only Ollama itself applies Go templates
``raw`` with ``system``,          a 400: without a template there is nowhere to put them
``images`` or ``format``
embed ``input``                   embeddings ``input``, ``encoding_format: float``;
                                  ``dimensions`` as is; ``truncate``, ``options``,
                                  ``keep_alive`` ride along for Ollama backends
embeddings (legacy) ``prompt``    embeddings ``input`` (one text)
================================  ===========================================================

The replies go back as Ollama's: ``response`` (and ``thinking``) from the chat message or
the completion's text, ``done_reason`` from ``finish_reason``, the token counts from
``usage``; ``embeddings`` (``embedding`` for the legacy endpoint) from ``data[].embedding``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routing._ollama_request import ollama_chat_to_openai
from routing._operations import Operation
from routing._request_specs import OLLAMA_PRIVATE, validate_request
from routing.errors import InvalidRequest

__all__ = ["embed_reply", "embed_to_openai", "embeddings_to_openai", "generate_to_openai"]

_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "stop": "stop",
    "num_predict": "max_tokens",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
_INTEGERS = frozenset({"seed", "num_predict", "top_k"})


def _refuse(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f"'{param}' cannot be served through the gateway: {why}",
        param=param,
        code="unsupported_parameter",
    )


def generate_to_openai(body: Mapping[str, Any]) -> tuple[Operation, dict[str, Any]]:
    """The operation and OpenAI-shaped request for an Ollama ``/api/generate`` body."""
    validate_request("ollama.generate", body)
    if body.get("context"):
        raise _refuse(
            "context",
            "token ids of an earlier answer exist only on the server "
            "that made them; send the conversation as chat messages",
        )
    if body.get("template"):
        raise _refuse(
            "template",
            "prompt templates are applied by Ollama's own server only; "
            "send raw: true with the prompt already formatted",
        )
    stream = body.get("stream") is not False
    if body.get("raw") is True or body.get("suffix"):
        return Operation.COMPLETION, _completion(body, stream)
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": body["system"]})
    user: dict[str, Any] = {"role": "user", "content": body.get("prompt") or ""}
    if body.get("images"):
        user["images"] = body["images"]
    messages.append(user)
    chat = {
        k: v
        for k, v in body.items()
        if k not in ("prompt", "system", "images", "raw", "suffix", "context")
    }
    chat["messages"] = messages
    return Operation.CHAT, ollama_chat_to_openai(chat)


def _completion(body: Mapping[str, Any], stream: bool) -> dict[str, Any]:
    for name in ("system", "images", "format"):
        if body.get(name):
            raise _refuse(
                name, "a raw prompt (or one with a suffix) has no template to place it in"
            )
    request: dict[str, Any] = {
        "model": body["model"],
        "prompt": body.get("prompt") or "",
        "stream": stream,
    }
    if body.get("suffix"):
        request["suffix"] = body["suffix"]
    private: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for name, value in (body.get("options") or {}).items():
        target = _OPTIONS.get(name)
        if value is None:
            continue
        if target is None or (name == "num_predict" and value < 0):
            other[name] = value
        else:
            request[target] = int(value) if name in _INTEGERS else value
    if other:
        private["options"] = other
    for name in ("raw", "keep_alive", "think"):
        if body.get(name) is not None:
            private[name] = body[name]
    for name, value in body.items():
        if name not in _KNOWN and value is not None:
            private[name] = value  # fields newer than this code: for Ollama backends
    if private:
        request[OLLAMA_PRIVATE] = private
    return request


_KNOWN = frozenset(
    {
        "model",
        "prompt",
        "suffix",
        "system",
        "template",
        "context",
        "stream",
        "raw",
        "format",
        "images",
        "options",
        "keep_alive",
        "think",
    }
)


def embed_to_openai(body: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI embeddings request for an Ollama ``/api/embed`` body."""
    validate_request("ollama.embed", body)
    request: dict[str, Any] = {
        "model": body["model"],
        "input": body["input"],
        "encoding_format": "float",
    }
    if body.get("dimensions") is not None:
        request["dimensions"] = body["dimensions"]
    private = {
        k: v for k, v in body.items() if k not in ("model", "input", "dimensions") and v is not None
    }
    if private:
        request[OLLAMA_PRIVATE] = private
    return request


def embeddings_to_openai(body: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI embeddings request for a legacy ``/api/embeddings`` body."""
    validate_request("ollama.embeddings", body)
    request: dict[str, Any] = {
        "model": body["model"],
        "input": body["prompt"],
        "encoding_format": "float",
    }
    private = {k: v for k, v in body.items() if k not in ("model", "prompt") and v is not None}
    if private:
        request[OLLAMA_PRIVATE] = private
    return request


def _index(item: Mapping[str, Any]) -> int:
    index = item.get("index")
    return index if isinstance(index, int) else 0


def embed_reply(reply: Mapping[str, Any]) -> tuple[list[Any], int]:
    """The vectors of an OpenAI embeddings reply, in input order, and its prompt tokens."""
    data = [d for d in reply.get("data") or () if isinstance(d, Mapping)]
    data.sort(key=_index)
    usage = reply.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, Mapping) else 0
    return [d.get("embedding") for d in data], tokens if isinstance(tokens, int) else 0
