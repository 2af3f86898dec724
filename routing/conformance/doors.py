"""The doors a conformance case can come through (``request.door``), for both paths.

==================  ============================  ===========================================
door                gateway endpoint              library call (the same engine)
==================  ============================  ===========================================
openai (default)    ``POST /v1/chat/completions``  ``complete`` / ``open_stream`` (chat)
openai-completions  ``POST /v1/completions``      operation ``completion``
openai-embeddings   ``POST /v1/embeddings``       operation ``embedding`` (never streamed)
anthropic           ``POST /v1/messages``         operation ``messages``
ollama              ``POST /api/chat``            the request the door makes of it (chat)
ollama-generate     ``POST /api/generate``        the request the door makes of it (chat)
ollama-embed        ``POST /api/embed``           the request the door makes of it
==================  ============================  ===========================================

Every door's reply (or stream) is read in its own shape for the text that names who answered
(``I am MODEL on KIND port PORT``) and the model it reports; embeddings carry no text, so an
embeddings case checks ``instance`` rather than ``answered_by``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from routing._gateway_ollama import to_openai_request
from routing._ollama_generate import embed_to_openai, generate_to_openai
from routing._operations import Operation

if TYPE_CHECKING:
    from routing.conformance.cases import Case
    from routing.conformance.driver import Outcome

__all__ = ["DOORS", "Door", "item_text", "library_request", "read_stream", "reply_text"]

PROMPT = "Say hi"


@dataclass(frozen=True, slots=True)
class Door:
    """One door: its gateway path, the operation it routes, and how its replies look."""

    name: str
    path: str
    operation: Operation
    shape: str  # "openai" (the operation's own shape), "anthropic" or "ollama"


DOORS = {
    door.name: door
    for door in (
        Door("openai", "/v1/chat/completions", Operation.CHAT, "openai"),
        Door("openai-completions", "/v1/completions", Operation.COMPLETION, "openai"),
        Door("openai-embeddings", "/v1/embeddings", Operation.EMBEDDING, "openai"),
        Door("anthropic", "/v1/messages", Operation.MESSAGES, "anthropic"),
        Door("ollama", "/api/chat", Operation.CHAT, "ollama"),
        Door("ollama-generate", "/api/generate", Operation.CHAT, "ollama"),
        Door("ollama-embed", "/api/embed", Operation.EMBEDDING, "ollama"),
    )
}


def gateway_request(case: Case) -> dict[str, Any]:
    """The body the case sends to its door on the gateway."""
    r = case.request
    user = [{"role": "user", "content": PROMPT}]
    body: dict[str, Any]
    if r.door == "openai":
        body = {"messages": user, "max_tokens": r.max_tokens, "stream": r.stream}
    elif r.door == "openai-completions":
        body = {"prompt": PROMPT, "max_tokens": r.max_tokens, "stream": r.stream}
    elif r.door in ("openai-embeddings", "ollama-embed"):
        body = {"input": [PROMPT]}
    elif r.door == "anthropic":
        body = {"messages": user, "max_tokens": r.max_tokens, "stream": r.stream}
    elif r.door == "ollama":
        body = {"messages": user, "stream": r.stream, "options": {"num_predict": r.max_tokens}}
    else:
        body = {"prompt": PROMPT, "stream": r.stream, "options": {"num_predict": r.max_tokens}}
    if r.model is not None:
        body["model"] = r.model
    return body


def library_request(case: Case) -> tuple[Operation, dict[str, Any]]:
    """The operation and request the library path sends: the door's own request for the
    OpenAI and Anthropic doors, what the Ollama doors make of theirs."""
    door, body = DOORS[case.request.door], gateway_request(case)
    if door.name == "ollama":
        return Operation.CHAT, to_openai_request(body)
    if door.name == "ollama-generate":
        return generate_to_openai(body)
    if door.name == "ollama-embed":
        return Operation.EMBEDDING, embed_to_openai(body)
    return door.operation, body


def reply_text(operation: Operation, shape: str, reply: Mapping[str, Any]) -> str:
    """The answer's text of a whole reply in ``shape`` (the operation's, or an Ollama one)."""
    if shape == "ollama":
        message = reply.get("message")
        if isinstance(message, Mapping):
            return str(message.get("content") or "")
        return str(reply.get("response") or "")
    if operation is Operation.MESSAGES:
        return "".join(
            str(b.get("text", "")) for b in reply.get("content") or () if isinstance(b, Mapping)
        )
    for choice in reply.get("choices") or ():
        if operation is Operation.COMPLETION:
            return str(choice.get("text") or "")
        content = (choice.get("message") or {}).get("content")
        if isinstance(content, str):
            return content
    return ""


def item_text(operation: Operation, shape: str, item: Mapping[str, Any]) -> str:
    """The text one stream item (chunk, event or NDJSON line) adds."""
    if shape == "ollama":
        return reply_text(operation, shape, item)
    if operation is Operation.MESSAGES:
        delta = item.get("delta") if item.get("type") == "content_block_delta" else None
        return str(delta.get("text") or "") if isinstance(delta, Mapping) else ""
    text = ""
    for choice in item.get("choices") or ():
        part = (
            choice.get("text")
            if operation is Operation.COMPLETION
            else (choice.get("delta") or {}).get("content")
        )
        text += part if isinstance(part, str) else ""
    return text


def reported_model(operation: Operation, item: Mapping[str, Any]) -> Any:
    """The model a reply or a first stream item names."""
    message = item.get("message")
    if operation is Operation.MESSAGES and isinstance(message, Mapping):
        return message.get("model")
    return item.get("model")


def take(outcome: Outcome, operation: Operation, shape: str, item: Mapping[str, Any]) -> None:
    """Add one stream item's text (and the first model named) to ``outcome``."""
    model = reported_model(operation, item)
    if outcome.reply_model is None and isinstance(model, str):
        outcome.reply_model = model
    outcome.text += item_text(operation, shape, item)


async def read_stream(door: Door, resp: aiohttp.ClientResponse, outcome: Outcome) -> None:
    """Read a door's stream from the gateway: broken when it ends unfinished or in error."""
    done = False
    try:
        async for raw in resp.content:
            line = raw.decode().strip()
            if door.shape == "ollama":
                if not line:
                    continue
                item = json.loads(line)
                done = done or item.get("done") is True
            else:
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    done = True
                    continue
                item = json.loads(data)
                done = done or item.get("type") == "message_stop"
            if "error" in item:
                outcome.stream_broken = True
                outcome.message = str(item["error"])
            else:
                take(outcome, door.operation, door.shape, item)
    except aiohttp.ClientPayloadError as exc:
        outcome.message = str(exc)
    outcome.stream_broken = outcome.stream_broken or not done
