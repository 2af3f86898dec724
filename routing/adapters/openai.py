"""The OpenAI chat-completions API style: llama.cpp, LM Studio, OpenAI (and Ollama's ``/v1``).

The wire format already is our unified shape, so the conversions only set ``model`` and
``stream``, and check that what comes back has the shape of a completion or a chunk.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import aiohttp

from routing._operations import Operation
from routing._request_specs import OLLAMA_PRIVATE
from routing.adapters._http import (
    WireBody,
    WireChunk,
    bearer_headers,
    expect_object,
    iter_sse,
    loads,
    post,
    post_read,
    with_extra,
)
from routing.adapters._native import send_native, stream_native
from routing.adapters._probe import (
    Probed,
    check,
    get_json,
    model_states,
    openai_ids,
    slots_load,
)
from routing.errors import BackendProtocolError, BackendUnavailable, Reason

if TYPE_CHECKING:
    from routing.config import Instance

__all__ = ["OpenAIAdapter", "chunk_from_wire", "from_wire", "headers", "to_wire", "wire_body"]

_DROP_KEYS = frozenset({"model", "stream", OLLAMA_PRIVATE})  # ours, never sent
_PRIVATE_KEYS = _DROP_KEYS - {"model", "stream"}  # dropped, not set again by to_wire


def to_wire(model: str, request: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
    """The request body: ``request`` with ``model`` and ``stream`` set, nothing else changed
    (a usage chunk is asked for only when the caller asked: the gateway is transparent)."""
    body = {k: v for k, v in request.items() if k not in _DROP_KEYS}
    body["model"] = model
    body["stream"] = stream
    return body


def wire_body(model: str, request: Mapping[str, Any], *, stream: bool) -> Mapping[str, Any] | bytes:
    """What to send: the client's own bytes when they already say exactly :func:`to_wire`
    would (a :class:`WireBody` that is :meth:`~WireBody.sendable`), else :func:`to_wire`."""
    if type(request) is WireBody and request.sendable(model, stream, _PRIVATE_KEYS):
        return request.wire
    return to_wire(model, request, stream=stream)


#: ``Authorization: Bearer`` only when the instance has a key (local servers need none).
headers = bearer_headers


def from_wire(reply: Any, key: str) -> dict[str, Any]:
    """Check a ``chat.completion`` reply's shape; return it (``object`` filled in if absent)."""
    body = expect_object(reply, key)
    if "error" in body and "choices" not in body:
        raise BackendProtocolError(
            f"error in a 200 reply: {body['error']}",
            instance=key,
            body=body,
            reason=Reason.SERVER_ERROR,
        )
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BackendProtocolError("reply has no choices", instance=key, body=body)
    if not isinstance(choices[0].get("message"), dict):
        raise BackendProtocolError("reply choice has no message", instance=key, body=body)
    body.setdefault("object", "chat.completion")
    return body


def chunk_from_wire(data: str, key: str) -> dict[str, Any] | None:
    """One SSE ``data`` payload as a ``chat.completion.chunk``; ``None`` for ``[DONE]``.

    A :class:`WireChunk` (``data`` kept) when ``data`` is one line and nothing was filled in.
    """
    if data.strip() == "[DONE]":
        return None
    chunk = expect_object(loads(data, key), key, "stream chunk")
    if "error" in chunk and "choices" not in chunk:
        raise BackendProtocolError(
            f"error inside the stream: {chunk['error']}",
            instance=key,
            body=chunk,
            reason=Reason.SERVER_ERROR,
        )
    if not isinstance(chunk.get("choices"), list):
        raise BackendProtocolError("stream chunk has no choices", instance=key, body=chunk)
    if "object" in chunk and "\n" not in data:
        return WireChunk(chunk, data)
    chunk.setdefault("object", "chat.completion.chunk")
    return chunk


class OpenAIAdapter:
    """Adapter for servers speaking ``POST {base_url}/chat/completions``."""

    api = "openai"
    #: Chat, text completions, embeddings; Anthropic messages (llama.cpp natively, the
    #: others translated to chat by the gateway).
    operations = frozenset(Operation)
    #: Server kinds speaking this style, with the port each listens on by default (None:
    #: a hosted API, always given a URL).
    kinds: Mapping[str, int | None] = MappingProxyType(
        {"llamacpp": 8080, "lmstudio": 1234, "openai": None}
    )
    #: What the style's official client takes as ``base_url``: the root URL plus this.
    url_suffix = "/v1"
    #: Model names valid without this tag (Ollama's ``llama3`` for ``llama3:latest``).
    #: A trailing part of a configured URL that is not the server's root (stripped).
    strip_suffix = "/v1"
    implicit_tag: str | None = None

    def headers(self, instance: Instance) -> dict[str, str]:
        """``Authorization: Bearer`` only when the instance has a key."""
        return headers(instance)

    async def probe(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        timeout: aiohttp.ClientTimeout,
        *,
        load: bool = False,
    ) -> Probed:
        """llama.cpp: ``GET /health`` (503 = LOADING; absent on old servers and proxies),
        ``GET /v1/models`` (router mode says which models are loaded) and, when ``load``
        is asked (a load-aware strategy is configured), ``GET /slots``; other servers:
        ``GET /v1/models`` alone (a 404 falls back to the configured ``models``)."""
        hdrs = headers(instance)
        llamacpp = instance.kind == "llamacpp"
        if llamacpp:
            status, body = await get_json(session, instance.url + "/health", hdrs, timeout)
            if status != 404:
                check(status, body, "GET /health")
        status, body = await get_json(session, instance.url + "/v1/models", hdrs, timeout)
        if status == 404 and instance.models and not llamacpp:
            return Probed(instance.models)
        models = openai_ids(check(status, body, "GET /v1/models"), "GET /v1/models")
        loaded, loading = model_states(body)
        busy = slots = None
        if load and llamacpp and loaded is None:  # one model: its slots are the server's load
            status, body = await get_json(session, instance.url + "/slots", hdrs, timeout)
            if status == 200:
                busy, slots = slots_load(body)
        return Probed(models, loaded, loading, busy, slots)

    async def chat(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> dict[str, Any]:
        """Send a non-streaming request; return the ``chat.completion`` dict."""
        return (await self.chat_raw(session, instance, model, request, timeout))[0]

    async def chat_raw(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> tuple[dict[str, Any], bytes | None]:
        """:meth:`chat`, plus the reply's bytes as the backend sent them when they encode
        exactly the returned dict (UTF-8 JSON, nothing filled in), else ``None``.

        The gateway forwards those bytes instead of encoding the dict again.
        """
        key = instance.key
        body = wire_body(model, request, stream=False)
        raw = await post_read(
            session,
            instance.base_url + "/chat/completions",
            body,
            key=key,
            headers=headers(instance),
            timeout=timeout,
        )
        text: str | bytes = raw  # json.loads detects a BOM, UTF-16/32: not passed on as is
        if not raw.startswith(b"\xef\xbb\xbf"):
            with contextlib.suppress(UnicodeDecodeError):
                text = raw.decode()
        reply = expect_object(loads(text, key), key)
        same = isinstance(text, str) and "object" in reply
        return from_wire(reply, key), raw if same else None

    async def stream(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> AsyncIterator[dict[str, Any]]:
        """Send a streaming request; yield each chunk as its SSE event arrives."""
        key = instance.key
        body = wire_body(model, request, stream=True)
        url = instance.base_url + "/chat/completions"
        finished = False
        async with post(
            session, url, body, key=key, headers=headers(instance), timeout=timeout
        ) as resp:
            async for _event, data in iter_sse(resp):
                chunk = chunk_from_wire(data, key)
                if chunk is None:
                    finished = True
                    break
                yield chunk
        if not finished:
            raise BackendProtocolError(
                "stream ended before it was complete (no [DONE])", instance=key
            )

    def passthrough(self, instance: Instance) -> frozenset[Operation]:
        """llama.cpp serves Anthropic's Messages API (and its token count) natively."""
        return _LLAMACPP_NATIVE if instance.kind == "llamacpp" else frozenset()

    def _url(self, instance: Instance, operation: Operation) -> str:
        if operation in self.passthrough(instance):
            return instance.url + _MESSAGES_PATHS[operation]
        path = _PATHS.get(operation)
        if path is None:
            raise BackendUnavailable(
                f"{instance.kind} servers do not serve {operation.noun}",
                instance=instance.key,
                reason=Reason.NOT_SUPPORTED,
            )
        return instance.base_url + path

    async def send(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        operation: Operation,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
        *,
        extra_headers: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Any], bytes | None]:
        """Text completions and embeddings (and, on llama.cpp, Anthropic messages and token
        counts) as the client sent them, with its ``extra_headers``; the reply forwarded as
        sent."""
        return await send_native(
            session,
            self._url(instance, operation),
            operation,
            model,
            request,
            key=instance.key,
            headers=with_extra(headers(instance), extra_headers),
            timeout=timeout,
        )

    async def send_stream(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        operation: Operation,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
        *,
        extra_headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream text completions (and, on llama.cpp, Anthropic messages) as sent, with
        their ``extra_headers``."""
        items = stream_native(
            session,
            self._url(instance, operation),
            operation,
            model,
            request,
            key=instance.key,
            headers=with_extra(headers(instance), extra_headers),
            timeout=timeout,
        )
        async with contextlib.aclosing(items):
            async for item in items:
                yield item


_PATHS = {Operation.COMPLETION: "/completions", Operation.EMBEDDING: "/embeddings"}
_MESSAGES_PATHS = {
    Operation.MESSAGES: "/v1/messages",
    Operation.COUNT_TOKENS: "/v1/messages/count_tokens",
}
_LLAMACPP_NATIVE = frozenset({Operation.MESSAGES, Operation.COUNT_TOKENS})
