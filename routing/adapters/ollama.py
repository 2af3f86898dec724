"""Ollama's native API: ``POST {url}/api/chat``, NDJSON streams, sampling under ``options``.

Conversions are pure functions (:func:`to_wire`, :func:`from_wire`, :class:`ChunkConverter`)
so they are tested without a server.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import aiohttp

from routing._decision import State
from routing._operations import Operation
from routing._request_specs import OLLAMA_PRIVATE
from routing.adapters._http import (
    bearer_headers,
    iter_ndjson,
    post,
    post_read,
    read_object,
    wants_usage,
    with_extra,
)
from routing.adapters._ollama_ops import send_completion, send_embedding, stream_completion
from routing.adapters._probe import Probed, ProbeFailed, check, get_json
from routing.errors import BackendProtocolError, BackendUnavailable, Reason

if TYPE_CHECKING:
    from routing.config import Instance

__all__ = ["ChunkConverter", "OllamaAdapter", "from_wire", "messages_to_wire", "to_wire"]

#: OpenAI request key -> Ollama ``options`` key.
OPTION_KEYS: Mapping[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "max_tokens": "num_predict",
    "max_completion_tokens": "num_predict",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}

_FINISH = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}


def to_wire(model: str, request: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
    """The ``/api/chat`` body for an OpenAI-shaped ``request``."""
    options: dict[str, Any] = {}
    for name, target in OPTION_KEYS.items():
        if request.get(name) is not None:
            options[target] = request[name]
    stop = request.get("stop")
    if stop is not None:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    body: dict[str, Any] = {
        "model": model,
        "messages": messages_to_wire(request.get("messages") or []),
        "stream": stream,
    }
    if options:
        body["options"] = options
    if request.get("tools"):
        body["tools"] = list(request["tools"])
    fmt = request.get("response_format")
    if isinstance(fmt, Mapping):
        if fmt.get("type") == "json_object":
            body["format"] = "json"
        elif fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), Mapping):
            body["format"] = fmt["json_schema"].get("schema", {})
    if "keep_alive" in request:
        body["keep_alive"] = request["keep_alive"]
    private = request.get(OLLAMA_PRIVATE)  # what an Ollama client sent the Ollama door
    if private:
        for name, value in private.items():
            if name == "options":
                body["options"] = {**value, **body.get("options", {})}
            else:
                body.setdefault(name, value)
    return body


def messages_to_wire(messages: Any) -> list[dict[str, Any]]:
    """OpenAI messages -> Ollama messages (text parts joined, images and tool calls moved)."""
    out: list[dict[str, Any]] = []
    called: dict[Any, Any] = {}  # tool call id -> name: Ollama names a result by its tool
    for message in messages:
        m: dict[str, Any] = {"role": message.get("role", "user")}
        content = message.get("content")
        if isinstance(content, list):
            texts, images = [], []
            for part in content:
                if part.get("type") == "text":
                    texts.append(str(part.get("text", "")))
                elif part.get("type") == "image_url":
                    url = str((part.get("image_url") or {}).get("url", ""))
                    images.append(url.split(",", 1)[1] if url.startswith("data:") else url)
            m["content"] = "".join(texts)
            if images:
                m["images"] = images
        else:
            m["content"] = content or ""
        if message.get("tool_calls"):
            m["tool_calls"] = [_tool_call_to_wire(c) for c in message["tool_calls"]]
            called.update(
                (c.get("id"), (c.get("function") or {}).get("name")) for c in message["tool_calls"]
            )
            if not m["content"]:  # OpenAI's null content: Ollama's own client sends none
                del m["content"]
        name = message.get("name") or called.get(message.get("tool_call_id"))
        if message.get("role") == "tool" and name:
            m["tool_name"] = name
        out.append(m)
    return out


def _tool_call_to_wire(call: Mapping[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    args = fn.get("arguments")
    if isinstance(args, str):
        try:
            args = json.loads(args) if args else {}
        except ValueError:
            args = {"_raw": args}
    return {"function": {"name": fn.get("name", ""), "arguments": args or {}}}


def tool_calls_from_wire(calls: Any, start: int = 0) -> list[dict[str, Any]]:
    """Ollama ``tool_calls`` -> OpenAI ones (arguments as a JSON string, ids made up)."""
    out = []
    for i, call in enumerate(calls or (), start):
        fn = call.get("function") or {}
        args = fn.get("arguments", {})
        out.append(
            {
                "index": i,
                "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": fn.get("name", ""),
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    return out


def usage_from_wire(reply: Mapping[str, Any]) -> dict[str, int]:
    """``prompt_eval_count`` / ``eval_count`` -> OpenAI ``usage``."""
    prompt = int(reply.get("prompt_eval_count") or 0)
    completion = int(reply.get("eval_count") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def finish_from_wire(reply: Mapping[str, Any], saw_tool_calls: bool) -> str:
    """``done_reason`` -> OpenAI ``finish_reason`` (tool calls win)."""
    if saw_tool_calls:
        return "tool_calls"
    return _FINISH.get(str(reply.get("done_reason") or "stop"), "stop")


def from_wire(reply: Any, key: str) -> dict[str, Any]:
    """An ``/api/chat`` reply (``stream: false``) -> an OpenAI ``chat.completion``."""
    message = reply.get("message") if isinstance(reply, dict) else None
    if not isinstance(message, dict) or not reply.get("done", True):
        raise BackendProtocolError("reply has no message", instance=key, body=reply)
    out_message: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    calls = tool_calls_from_wire(message.get("tool_calls"))
    if calls:
        out_message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
        out_message["content"] = out_message["content"] or None
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": out_message,
                "finish_reason": finish_from_wire(reply, bool(calls)),
            }
        ],
        "usage": usage_from_wire(reply),
    }


class ChunkConverter:
    """Turns NDJSON lines of one stream into OpenAI chunks (keeps the id and tool index)."""

    def __init__(self, key: str, include_usage: bool = False) -> None:
        self.key = key
        self.include_usage = include_usage
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.started = False
        self.tool_calls = 0
        self.done = False

    def _chunk(self, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def convert(self, line: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The chunks for one NDJSON line (the final line gives a finish chunk, and a usage
        chunk when ``include_usage``)."""
        if "error" in line:
            raise BackendProtocolError(
                f"error inside the stream: {line['error']}",
                instance=self.key,
                body=dict(line),
                reason=Reason.SERVER_ERROR,
            )
        message = line.get("message")
        if not isinstance(message, dict) and not line.get("done"):
            raise BackendProtocolError(
                "stream line has no message", instance=self.key, body=dict(line)
            )
        model = str(line.get("model", ""))
        out = []
        delta: dict[str, Any] = {}
        if not self.started:
            delta["role"] = "assistant"
            self.started = True
        if isinstance(message, dict):
            if message.get("content"):
                delta["content"] = message["content"]
            calls = tool_calls_from_wire(message.get("tool_calls"), self.tool_calls)
            if calls:
                delta["tool_calls"] = calls
                self.tool_calls += len(calls)
        if delta:
            out.append(self._chunk(model, delta, None))
        if line.get("done"):
            self.done = True
            out.append(self._chunk(model, {}, finish_from_wire(line, self.tool_calls > 0)))
            if self.include_usage:
                usage = self._chunk(model, {}, None)
                usage["choices"] = []
                usage["usage"] = usage_from_wire(line)
                out.append(usage)
        return out


class OllamaAdapter:
    """Adapter for Ollama's native ``/api/chat``."""

    api = "ollama"
    #: Chat, text completions (generate), embeddings (embed); messages translated to chat.
    operations = frozenset(
        {Operation.CHAT, Operation.COMPLETION, Operation.EMBEDDING, Operation.MESSAGES}
    )
    kinds: Mapping[str, int | None] = MappingProxyType({"ollama": 11434})
    url_suffix = ""
    #: A trailing part of a configured URL that is not the server's root (stripped).
    strip_suffix = ""
    implicit_tag: str | None = ":latest"

    def headers(self, instance: Instance) -> dict[str, str]:
        """``Authorization: Bearer`` when the instance has a key (Ollama behind a proxy)."""
        return bearer_headers(instance)

    async def probe(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        timeout: aiohttp.ClientTimeout,
        *,
        load: bool = False,
    ) -> Probed:
        """``GET /api/tags`` decides readiness and lists the models; ``GET /api/ps`` (a
        nicety: its failure only means "not said") says which are loaded."""
        hdrs = bearer_headers(instance)
        status, body = await get_json(session, instance.url + "/api/tags", hdrs, timeout)
        body = check(status, body, "GET /api/tags")
        models = body.get("models") if isinstance(body, dict) else None
        if not isinstance(models, list):
            raise ProbeFailed(State.UNHEALTHY, "GET /api/tags: no models[] list")
        names = tuple(str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict))
        loaded: tuple[str, ...] | None = None
        with contextlib.suppress(ProbeFailed):
            status, ps = await get_json(session, instance.url + "/api/ps", hdrs, timeout)
            if status == 200 and isinstance(ps, dict) and isinstance(ps.get("models"), list):
                loaded = tuple(
                    str(m.get("name") or m.get("model"))
                    for m in ps["models"]
                    if isinstance(m, dict)
                )
        return Probed(names, loaded)

    async def chat(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> dict[str, Any]:
        """Send ``stream: false``; return an OpenAI ``chat.completion``."""
        return (await self.chat_raw(session, instance, model, request, timeout))[0]

    async def chat_raw(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> tuple[dict[str, Any], None]:
        """:meth:`chat` and ``None``: the reply is converted, so no bytes are forwarded."""
        key = instance.key
        raw = await post_read(
            session,
            instance.url + "/api/chat",
            to_wire(model, request, stream=False),
            key=key,
            headers=bearer_headers(instance),
            timeout=timeout,
        )
        return from_wire(read_object(raw, key), key), None

    async def stream(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> AsyncIterator[dict[str, Any]]:
        """Send ``stream: true``; yield OpenAI chunks as each NDJSON line arrives."""
        key = instance.key
        converter = ChunkConverter(key, include_usage=wants_usage(request))
        async with post(
            session,
            instance.url + "/api/chat",
            to_wire(model, request, stream=True),
            key=key,
            headers=bearer_headers(instance),
            timeout=timeout,
        ) as resp:
            async for line in iter_ndjson(resp, key):
                for chunk in converter.convert(line):
                    yield chunk
                if converter.done:
                    break
        if not converter.done:
            raise BackendProtocolError(
                "stream ended before it was complete (no done line)", instance=key
            )

    def passthrough(self, instance: Instance) -> frozenset[Operation]:
        """None: every request is converted to Ollama's own API."""
        return frozenset()

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
    ) -> tuple[dict[str, Any], None]:
        """Embeddings (``/api/embed``) and text completions (``/api/generate``), converted
        from and to OpenAI's shapes (see :mod:`routing.adapters._ollama_ops`), with
        ``extra_headers``."""
        if operation is Operation.EMBEDDING:
            send = send_embedding
        elif operation is Operation.COMPLETION:
            send = send_completion
        else:
            raise _unsupported(instance, operation)
        reply = await send(
            session,
            instance.url,
            model,
            request,
            key=instance.key,
            headers=with_extra(bearer_headers(instance), extra_headers),
            timeout=timeout,
        )
        return reply, None

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
        """Streamed text completions: ``/api/generate`` lines as OpenAI chunks (with
        ``extra_headers``)."""
        if operation is not Operation.COMPLETION:
            raise _unsupported(instance, operation)
        chunks = stream_completion(
            session,
            instance.url,
            model,
            request,
            key=instance.key,
            headers=with_extra(bearer_headers(instance), extra_headers),
            timeout=timeout,
        )
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                yield chunk


def _unsupported(instance: Instance, operation: Operation) -> BackendUnavailable:
    return BackendUnavailable(
        f"Ollama's API does not serve {operation.noun} here",
        instance=instance.key,
        reason=Reason.NOT_SUPPORTED,
    )
