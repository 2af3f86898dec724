"""One attempt of one operation on one instance: which adapter call, passed through or
translated.

=========================  =================================================================
operation                  sent as
=========================  =================================================================
chat                       ``adapter.chat_raw`` / ``adapter.stream`` (OpenAI-shaped)
completion, embedding      ``adapter.send`` / ``adapter.send_stream`` (OpenAI-shaped)
messages, passed through   ``adapter.send`` / ``adapter.send_stream`` when the instance speaks
                           Anthropic Messages (``adapter.passthrough``); a ``not_supported``
                           answer (a llama.cpp from before its Messages API) is retried on the
                           same instance translated
messages, translated       to OpenAI chat and back (:mod:`routing._anthropic_convert`)
=========================  =================================================================

The decision's reason says which (``Anthropic messages passed through …`` / ``… translated
to chat …``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from routing._anthropic_convert import chat_to_message, messages_to_chat, translate_events
from routing.errors import BackendError, Reason
from routing.operations import Operation

if TYPE_CHECKING:
    from routing.adapters.base import Adapter
    from routing.config import Instance

__all__ = ["Route", "reported_model", "send_once", "stream_once"]


class Route:
    """How an attempt was carried: ``note`` for the decision's reason ("" for plain calls)."""

    __slots__ = ("note",)

    def __init__(self) -> None:
        self.note = ""


def _passed(inst: Instance) -> str:
    return f"Anthropic messages passed through ({inst.kind} speaks them natively)"


def _translated(inst: Instance, fallback: bool = False) -> str:
    why = " (the server answered not_supported to them natively)" if fallback else ""
    return f"Anthropic messages translated to chat for {inst.kind} ({inst.api} API){why}"


async def send_once(adapter: Adapter, session: aiohttp.ClientSession, inst: Instance,
                    operation: Operation, model: str, request: Mapping[str, Any],
                    timeout: aiohttp.ClientTimeout) -> tuple[dict[str, Any], bytes | None, str]:
    """The reply, its bytes when forwarded as sent, and how it was carried."""
    if operation is Operation.CHAT:
        reply, raw = await adapter.chat_raw(session, inst, model, request, timeout)
        return reply, raw, ""
    if operation is not Operation.MESSAGES:
        reply, raw = await adapter.send(session, inst, operation, model, request, timeout)
        return reply, raw, ""
    fallback = False
    if operation in adapter.passthrough(inst):
        try:
            reply, raw = await adapter.send(session, inst, operation, model, request, timeout)
        except BackendError as exc:
            if exc.reason is not Reason.NOT_SUPPORTED:
                raise
            fallback = True
        else:
            return reply, raw, _passed(inst)
    chat = messages_to_chat(request)
    reply, _ = await adapter.chat_raw(session, inst, model, chat, timeout)
    return chat_to_message(reply), None, _translated(inst, fallback)


def stream_once(adapter: Adapter, session: aiohttp.ClientSession, inst: Instance,
                operation: Operation, model: str, request: Mapping[str, Any],
                timeout: aiohttp.ClientTimeout) -> tuple[AsyncIterator[dict[str, Any]], Route]:
    """The chunks (or events) of a streamed attempt, and its :class:`Route` (its note is
    known once the first item has arrived)."""
    route = Route()
    if operation is Operation.CHAT:
        return adapter.stream(session, inst, model, request, timeout), route
    if operation is Operation.MESSAGES:
        return _messages(adapter, session, inst, model, request, timeout, route), route
    return adapter.send_stream(session, inst, operation, model, request, timeout), route


async def _close(items: AsyncIterator[dict[str, Any]]) -> None:
    if isinstance(items, AsyncGenerator):
        await items.aclose()


async def _messages(adapter: Adapter, session: aiohttp.ClientSession, inst: Instance,
                    model: str, request: Mapping[str, Any], timeout: aiohttp.ClientTimeout,
                    route: Route) -> AsyncGenerator[dict[str, Any], None]:
    fallback = False
    if Operation.MESSAGES in adapter.passthrough(inst):
        events = adapter.send_stream(session, inst, Operation.MESSAGES, model, request,
                                     timeout)
        try:
            first = await events.__anext__()
        except BackendError as exc:
            await _close(events)
            if exc.reason is not Reason.NOT_SUPPORTED:
                raise
            fallback = True
        except BaseException:
            await _close(events)
            raise
        else:
            route.note = _passed(inst)
            try:
                yield first
                async for event in events:
                    yield event
            finally:
                await _close(events)
            return
    chat = {**messages_to_chat(request), "stream": True,
            "stream_options": {"include_usage": True}}
    route.note = _translated(inst, fallback)
    translated = translate_events(adapter.stream(session, inst, model, chat, timeout))
    async with contextlib.aclosing(translated):
        async for event in translated:
            yield event


def reported_model(operation: Operation, first: Mapping[str, Any]) -> Any:
    """The model a reply (or a stream's first item) says answered."""
    if operation in (Operation.MESSAGES, Operation.COUNT_TOKENS):
        message = first.get("message")
        return message.get("model") if isinstance(message, Mapping) else first.get("model")
    return first.get("model")
