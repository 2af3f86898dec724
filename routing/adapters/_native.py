"""Requests passed to a backend in its own wire format, for the operations besides chat.

Shared by the API styles whose servers speak a door's protocol natively: OpenAI text
completions and embeddings (``openai``), Anthropic Messages and token counts (``anthropic``,
and llama.cpp servers, which serve Anthropic's Messages API too).  The body goes out as the
client sent it, ``model`` replaced by the routed id; the reply is checked for its shape (a
wrong one is a ``protocol`` failure, an error object in it a ``server_error``) and forwarded
as sent when its bytes encode it exactly.

=================  ==========================  ============================================
operation          reply must have             stream
=================  ==========================  ============================================
completion         ``choices`` (a list)        SSE ``data:`` chunks, ``[DONE]`` last
embedding          ``data`` (a list)           never streamed
messages           ``type: message``,          SSE named events, ``message_stop`` last; an
                   ``content`` (a list)        ``error`` event is raised (``overloaded_error``:
                                               ``overloaded``, else ``server_error``)
count_tokens       ``input_tokens`` (integer)  never streamed
=================  ==========================  ============================================
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp

from routing._operations import Operation
from routing._request_specs import OLLAMA_PRIVATE
from routing.adapters._http import expect_object, iter_sse, loads, post, post_read
from routing.errors import BackendError, BackendProtocolError, BackendUnavailable, Reason

__all__ = ["native_body", "send_native", "stream_native"]

_DROP_KEYS = frozenset({"model", "stream", OLLAMA_PRIVATE})
_STREAMED = frozenset({Operation.COMPLETION, Operation.MESSAGES})


def native_body(
    operation: Operation, model: str, request: Mapping[str, Any], *, stream: bool
) -> dict[str, Any]:
    """The body sent upstream: the client's, ``model`` set; ``stream`` set where it exists."""
    body = {k: v for k, v in request.items() if k not in _DROP_KEYS}
    body["model"] = model
    if operation in _STREAMED:
        body["stream"] = stream
    return body


def _check(operation: Operation, reply: dict[str, Any], key: str) -> None:
    if operation is Operation.MESSAGES:
        ok = reply.get("type") == "message" and isinstance(reply.get("content"), list)
        what = "a message"
    elif operation is Operation.COUNT_TOKENS:
        tokens = reply.get("input_tokens")
        ok = isinstance(tokens, int) and not isinstance(tokens, bool)
        what = "a token count"
    elif operation is Operation.EMBEDDING:
        ok = isinstance(reply.get("data"), list)
        what = "a list of embeddings"
    else:
        ok = isinstance(reply.get("choices"), list)
        what = "a text completion"
    if not ok:
        if "error" in reply:
            raise BackendProtocolError(
                f"error in a 200 reply: {reply['error']}",
                instance=key,
                body=reply,
                reason=Reason.SERVER_ERROR,
            )
        raise BackendProtocolError(f"reply is not {what}", instance=key, body=reply)


async def send_native(
    session: aiohttp.ClientSession,
    url: str,
    operation: Operation,
    model: str,
    request: Mapping[str, Any],
    *,
    key: str,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
) -> tuple[dict[str, Any], bytes | None]:
    """POST ``request`` for ``operation`` to ``url``; the checked reply and its bytes."""
    raw = await post_read(
        session,
        url,
        native_body(operation, model, request, stream=False),
        key=key,
        headers=headers,
        timeout=timeout,
    )
    text: str | bytes = raw  # json.loads reads a BOM or UTF-16 too: not forwarded as is
    if not raw.startswith(b"\xef\xbb\xbf"):
        with contextlib.suppress(UnicodeDecodeError):
            text = raw.decode()
    reply = expect_object(loads(text, key), key)
    _check(operation, reply, key)
    return reply, raw if isinstance(text, str) else None


async def stream_native(
    session: aiohttp.ClientSession,
    url: str,
    operation: Operation,
    model: str,
    request: Mapping[str, Any],
    *,
    key: str,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
) -> AsyncGenerator[dict[str, Any], None]:
    """POST a streaming ``request``; yield each chunk (completion) or event (messages)."""
    body = native_body(operation, model, request, stream=True)
    finished = False
    async with post(session, url, body, key=key, headers=headers, timeout=timeout) as resp:
        async for event, data in iter_sse(resp):
            if operation is Operation.COMPLETION and data.strip() == "[DONE]":
                finished = True
                break
            payload = expect_object(loads(data, key), key, "stream event")
            if operation is Operation.MESSAGES:
                kind = payload.get("type", event)
                if kind == "error":
                    raise _stream_error(payload, key)
                yield payload
                if kind == "message_stop":
                    finished = True
                    break
            else:
                if not isinstance(payload.get("choices"), list):
                    if "error" in payload:
                        raise BackendProtocolError(
                            f"error inside the stream: {payload['error']}",
                            instance=key,
                            body=payload,
                            reason=Reason.SERVER_ERROR,
                        )
                    raise BackendProtocolError(
                        "stream chunk has no choices", instance=key, body=payload
                    )
                yield payload
    if not finished:
        last = "message_stop" if operation is Operation.MESSAGES else "[DONE]"
        raise BackendProtocolError(f"stream ended before it was complete (no {last})", instance=key)


def _stream_error(payload: dict[str, Any], key: str) -> BackendError:
    error = payload.get("error")
    error = error if isinstance(error, dict) else {}
    message = f"error inside the stream: {error.get('message', error)}"
    if error.get("type") == "overloaded_error":
        return BackendUnavailable(message, instance=key, body=payload, reason=Reason.OVERLOADED)
    return BackendProtocolError(message, instance=key, body=payload, reason=Reason.SERVER_ERROR)
