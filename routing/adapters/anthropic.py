"""Anthropic's Messages API: ``POST {url}/v1/messages``, SSE events, ``system`` split out.

Conversions are pure (:func:`to_wire`, :func:`from_wire`, :class:`EventConverter`) and are
tested without a server.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import aiohttp

from routing._operations import Operation
from routing.adapters._http import (
    expect_object,
    iter_sse,
    loads,
    post,
    post_read,
    read_object,
    wants_usage,
    with_extra,
)
from routing.adapters._native import send_native, stream_native
from routing.adapters._probe import Probed, check, get_json, openai_ids
from routing.errors import BackendProtocolError, BackendUnavailable, Reason

if TYPE_CHECKING:
    from routing.config import Instance

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicAdapter", "EventConverter", "from_wire", "to_wire"]

#: ``max_tokens`` is required by Anthropic; used when the request names none.
DEFAULT_MAX_TOKENS = 1024
API_VERSION = "2023-06-01"

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}


def to_wire(model: str, request: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
    """The ``/v1/messages`` body for an OpenAI-shaped ``request``."""
    system, messages = messages_to_wire(request.get("messages") or [])
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": _max_tokens(request),
        "stream": stream,
    }
    if system:
        body["system"] = system
    for name in ("temperature", "top_p", "top_k"):
        if request.get(name) is not None:
            body[name] = request[name]
    stop = request.get("stop")
    if stop is not None:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if request.get("tools"):
        body["tools"] = [tool_to_wire(t) for t in request["tools"]]
    choice = tool_choice_to_wire(request.get("tool_choice"))
    if choice is not None:
        body["tool_choice"] = choice
    return body


def _max_tokens(request: Mapping[str, Any]) -> Any:
    """The caller's limit as given (0 included: never silently raised); the default only
    when the request names none."""
    for name in ("max_tokens", "max_completion_tokens"):
        if request.get(name) is not None:
            return request[name]
    return DEFAULT_MAX_TOKENS


def tool_to_wire(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI function tool -> an Anthropic tool (``input_schema``)."""
    fn = tool.get("function") or tool
    out = {
        "name": fn.get("name", ""),
        "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
    }
    if fn.get("description"):
        out["description"] = fn["description"]
    return out


def tool_choice_to_wire(choice: Any) -> dict[str, Any] | None:
    """OpenAI ``tool_choice`` -> Anthropic's."""
    if choice is None:
        return None
    if isinstance(choice, str):
        return {"type": {"auto": "auto", "required": "any", "none": "none"}.get(choice, "auto")}
    name = (choice.get("function") or {}).get("name")
    return {"type": "tool", "name": name} if name else {"type": "auto"}


def messages_to_wire(messages: Any) -> tuple[str, list[dict[str, Any]]]:
    """Split out system text; map tool calls/results to blocks; merge same-role neighbours."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role", "user")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(_text_of(content))
            continue
        blocks: list[dict[str, Any]]
        if role == "tool":
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.get("tool_call_id", ""),
                    "content": _text_of(content),
                }
            ]
        else:
            blocks = _content_blocks(content)
            for call in message.get("tool_calls") or ():
                fn = call.get("function") or {}
                args = fn.get("arguments") or "{}"
                try:
                    arguments = json.loads(args) if isinstance(args, str) else args
                except ValueError:
                    arguments = {"_raw": args}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": fn.get("name", ""),
                        "input": arguments,
                    }
                )
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return "\n\n".join(s for s in system if s), out


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return str(content or "")


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif part.get("type") == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            if url.startswith("data:") and ";base64," in url:
                media, data = url[5:].split(";base64,", 1)
                blocks.append(
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": media, "data": data},
                    }
                )
            else:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
    return blocks


def usage_from_wire(usage: Any) -> dict[str, int]:
    """``input_tokens`` / ``output_tokens`` -> OpenAI ``usage``."""
    usage = usage if isinstance(usage, Mapping) else {}
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def from_wire(reply: Any, key: str) -> dict[str, Any]:
    """A Messages API reply -> an OpenAI ``chat.completion``."""
    body = expect_object(reply, key)
    content = body.get("content")
    if body.get("type") == "error" or not isinstance(content, list):
        raise BackendProtocolError("reply is not a message", instance=key, body=body)
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": json.dumps(block.get("input", {})),
                    },
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    return {
        "id": body.get("id", ""),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _FINISH.get(str(body.get("stop_reason")), "stop"),
            }
        ],
        "usage": usage_from_wire(body.get("usage")),
    }


class EventConverter:
    """Turns the SSE events of one Messages stream into OpenAI chunks."""

    def __init__(self, key: str, include_usage: bool = False) -> None:
        self.key = key
        self.include_usage = include_usage
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.finish: str | None = None
        self.tool_index: dict[int, int] = {}  # content block index -> tool call index
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def convert(self, event: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The chunks for one event (``message_stop`` gives the finish and usage chunks)."""
        kind = data.get("type", event)
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = str(message.get("id", ""))
            self.model = str(message.get("model", ""))
            self.prompt_tokens = usage_from_wire(message.get("usage"))["prompt_tokens"]
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") != "tool_use":
                return []
            index = self.tool_index[int(data.get("index", 0))] = len(self.tool_index)
            return [
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": block.get("id", ""),
                                "type": "function",
                                "function": {"name": block.get("name", ""), "arguments": ""},
                            }
                        ]
                    }
                )
            ]
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(int(data.get("index", 0)), 0)
                return [
                    self._chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": index,
                                    "function": {"arguments": delta.get("partial_json", "")},
                                }
                            ]
                        }
                    )
                ]
            return []  # thinking, signatures: not part of the OpenAI shape
        if kind == "message_delta":
            reason = (data.get("delta") or {}).get("stop_reason")
            self.finish = _FINISH.get(str(reason), "stop")
            self.completion_tokens = usage_from_wire(data.get("usage"))["completion_tokens"]
            return []
        if kind == "message_stop":
            self.done = True
            out = [self._chunk({}, self.finish or "stop")]
            if self.include_usage:
                usage = self._chunk({})
                usage["choices"] = []
                usage["usage"] = {
                    "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens,
                    "total_tokens": self.prompt_tokens + self.completion_tokens,
                }
                out.append(usage)
            return out
        if kind == "error":
            err = data.get("error") or {}
            if err.get("type") == "overloaded_error":
                raise BackendUnavailable(
                    f"error inside the stream: {err.get('message', err)}",
                    instance=self.key,
                    body=dict(data),
                    reason=Reason.OVERLOADED,
                )
            # The server reported an error for this request: a server_error (the instance
            # stays in unless a probe says otherwise), not garbage.
            raise BackendProtocolError(
                f"error inside the stream: {err.get('message', err)}",
                instance=self.key,
                body=dict(data),
                reason=Reason.SERVER_ERROR,
            )
        return []  # ping, content_block_stop, unknown future events


class AnthropicAdapter:
    """Adapter for Anthropic's ``/v1/messages``."""

    api = "anthropic"
    #: Anthropic messages (passed through) and chat (translated to messages).
    operations = frozenset({Operation.CHAT, Operation.MESSAGES})
    kinds: Mapping[str, int | None] = MappingProxyType({"anthropic": None})
    url_suffix = ""  # the client adds /v1/messages itself
    #: A trailing part of a configured URL that is not the server's root (stripped).
    strip_suffix = "/v1"
    implicit_tag: str | None = None

    def headers(self, instance: Instance) -> dict[str, str]:
        """``anthropic-version`` always; ``x-api-key`` when the instance has a key."""
        return headers(instance)

    async def probe(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        timeout: aiohttp.ClientTimeout,
        *,
        load: bool = False,
    ) -> Probed:
        """``GET /v1/models`` (``x-api-key``); a 404 falls back to the configured ``models``."""
        status, body = await get_json(
            session, instance.url + "/v1/models", headers(instance), timeout
        )
        if status == 404 and instance.models:
            return Probed(instance.models)
        return Probed(openai_ids(check(status, body, "GET /v1/models"), "GET /v1/models"))

    async def chat(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> dict[str, Any]:
        """Send a non-streaming request; return an OpenAI ``chat.completion``."""
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
            instance.url + "/v1/messages",
            to_wire(model, request, stream=False),
            key=key,
            headers=headers(instance),
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
        """Send a streaming request; yield OpenAI chunks as each SSE event arrives."""
        key = instance.key
        converter = EventConverter(key, include_usage=wants_usage(request))
        async with post(
            session,
            instance.url + "/v1/messages",
            to_wire(model, request, stream=True),
            key=key,
            headers=headers(instance),
            timeout=timeout,
        ) as resp:
            async for event, data in iter_sse(resp):
                payload = expect_object(loads(data, key), key, "stream event")
                for chunk in converter.convert(event, payload):
                    yield chunk
                if converter.done:
                    break
        if not converter.done:
            raise BackendProtocolError(
                "stream ended before it was complete (no message_stop)", instance=key
            )

    def passthrough(self, instance: Instance) -> frozenset[Operation]:
        """Messages and token counts go out as the client sent them."""
        return _NATIVE

    def _url(self, instance: Instance, operation: Operation) -> str:
        if operation not in _NATIVE:
            raise BackendUnavailable(
                f"Anthropic's API does not serve {operation.noun}",
                instance=instance.key,
                reason=Reason.NOT_SUPPORTED,
            )
        return instance.url + _PATHS[operation]

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
        """A messages request or a token count, as the client sent it (with its
        ``extra_headers``: a client's ``anthropic-version`` replaces the default one); the
        reply as sent."""
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
        """A streamed messages request (``extra_headers`` as in :meth:`send`); yields each SSE
        event as its JSON object."""
        events = stream_native(
            session,
            self._url(instance, operation),
            operation,
            model,
            request,
            key=instance.key,
            headers=with_extra(headers(instance), extra_headers),
            timeout=timeout,
        )
        async with contextlib.aclosing(events):
            async for event in events:
                yield event


_NATIVE = frozenset({Operation.MESSAGES, Operation.COUNT_TOKENS})
_PATHS = {Operation.MESSAGES: "/v1/messages", Operation.COUNT_TOKENS: "/v1/messages/count_tokens"}


def headers(instance: Instance) -> dict[str, str]:
    """``anthropic-version`` always; ``x-api-key`` when the instance has a key."""
    out = {"anthropic-version": API_VERSION}
    key = instance.api_key()
    if key:
        out["x-api-key"] = key
    return out
