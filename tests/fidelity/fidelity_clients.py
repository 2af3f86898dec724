"""One exchange through a door of the gateway, or straight to a backend, with the real clients.

Each function sends one :class:`~fidelity_support.Scenario` with the client package of the
style it speaks (``openai``, ``ollama``, ``anthropic``), closes the client, and returns an
:class:`Exchange`: the reply's meaning, the client's objects dumped to plain data, and the
chat bodies the backend's fake received.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any

import anthropic
import ollama
import openai
from fidelity_meaning import (
    Meaning,
    OpenAIStream,
    anthropic_reply,
    anthropic_stream,
    ollama_reply,
    ollama_stream,
    openai_reply,
)
from fidelity_support import (
    MODELS,
    STYLE,
    Rig,
    Scenario,
    anthropic_request,
    ollama_request,
    openai_request,
)

_TIMEOUT = 10.0
# One TLS context for every client: building one per client (httpx's default) costs ~50 ms,
# more than the exchange itself; nothing here speaks TLS.
_TLS = ssl.create_default_context()


@dataclass(slots=True)
class Exchange:
    """What one request gave."""

    meaning: Meaning
    dump: Any
    """The client's reply object(s) as plain data (a list of them for a stream)."""
    bodies: list[Any]
    """The chat request bodies the backend received."""
    routed: str | None = None
    """The gateway's ``X-Routed-To`` header (None: not through the gateway, or absent)."""
    openai_stream: OpenAIStream | None = None
    raw: list[Any] = field(default_factory=list)
    """The client's reply objects (one, or every chunk / part / event of a stream)."""


def via_openai_door(rig: Rig, s: Scenario, kind: str, *, stream: bool) -> Exchange:
    """``s`` sent by ``openai.OpenAI`` to the gateway's ``/v1/chat/completions``."""
    return _openai(
        rig, rig.url + "/v1", "x", openai_request(s, stream=stream), kind, stream=stream, usage=None
    )


def via_ollama_door(rig: Rig, s: Scenario, kind: str, *, stream: bool) -> Exchange:
    """``s`` sent by ``ollama.Client`` to the gateway's ``/api/chat``."""
    return _ollama(rig, rig.url, s, kind, stream=stream)


def direct(
    rig: Rig,
    s: Scenario,
    kind: str,
    *,
    stream: bool,
    usage: bool | None = None,
    from_ollama: bool = False,
) -> Exchange:
    """``s`` sent by the client of ``kind``'s own style straight to its fake.

    ``usage`` (OpenAI style, streams): override ``stream_options.include_usage``.
    ``from_ollama`` (OpenAI style): say ``s`` as Ollama's request means it (an assistant
    message's content is ``""``, never null: Ollama has no null content).
    """
    fake = rig.fakes[kind]
    if STYLE[kind] == "openai":
        request = openai_request(s, stream=stream, no_content="" if from_ollama else None)
        return _openai(
            rig, fake.url + "/v1", rig.key(kind), request, kind, stream=stream, usage=usage
        )
    if STYLE[kind] == "ollama":
        return _ollama(rig, fake.url, s, kind, stream=stream)
    return _anthropic(rig, s, kind, stream=stream)


def _openai(
    rig: Rig,
    base_url: str,
    key: str,
    request: dict[str, Any],
    kind: str,
    *,
    stream: bool,
    usage: bool | None,
) -> Exchange:
    if stream and usage is not None:
        request["stream_options"] = {"include_usage": usage}
    since = len(rig.fakes[kind].requests)
    with openai.OpenAI(
        base_url=base_url,
        api_key=key,
        max_retries=0,
        timeout=_TIMEOUT,
        http_client=openai.DefaultHttpxClient(verify=_TLS),
    ) as client:
        raw = client.chat.completions.with_raw_response.create(model=MODELS[kind], **request)
        routed = raw.headers.get("X-Routed-To")
        reply = raw.parse()
        if stream:
            accumulated = OpenAIStream.read(reply)
            return Exchange(
                accumulated.meaning(),
                [c.model_dump() for c in accumulated.chunks],
                rig.chat_bodies(kind, since),
                routed,
                accumulated,
                accumulated.chunks,
            )
    return Exchange(
        openai_reply(reply), reply.model_dump(), rig.chat_bodies(kind, since), routed, raw=[reply]
    )


def _ollama(rig: Rig, host: str, s: Scenario, kind: str, *, stream: bool) -> Exchange:
    since = len(rig.fakes[kind].requests)
    with ollama.Client(host=host, timeout=_TIMEOUT, verify=_TLS) as client:
        if stream:
            parts = list(client.chat(model=MODELS[kind], **ollama_request(s, stream=True)))
            return Exchange(
                ollama_stream(parts),
                [p.model_dump() for p in parts],
                rig.chat_bodies(kind, since),
                raw=parts,
            )
        reply = client.chat(model=MODELS[kind], **ollama_request(s, stream=False))
    return Exchange(
        ollama_reply(reply), reply.model_dump(), rig.chat_bodies(kind, since), raw=[reply]
    )


def _anthropic(rig: Rig, s: Scenario, kind: str, *, stream: bool) -> Exchange:
    since = len(rig.fakes[kind].requests)
    with anthropic.Anthropic(
        base_url=rig.fakes[kind].url,
        api_key=rig.key(kind),
        max_retries=0,
        timeout=_TIMEOUT,
        http_client=anthropic.DefaultHttpxClient(verify=_TLS),
    ) as client:
        reply = client.messages.create(model=MODELS[kind], **anthropic_request(s, stream=stream))
        if stream:
            events = list(reply)
            return Exchange(
                anthropic_stream(events),
                [e.model_dump() for e in events],
                rig.chat_bodies(kind, since),
                raw=events,
            )
    return Exchange(
        anthropic_reply(reply), reply.model_dump(), rig.chat_bodies(kind, since), raw=[reply]
    )
