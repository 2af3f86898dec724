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
messages, translated       to OpenAI chat (:mod:`routing._anthropic_convert`) and back
                           (:mod:`routing._anthropic_reply`)
=========================  =================================================================

The decision's reason says which (``Anthropic messages passed through …`` / ``… translated
to chat …``).  ``extra_headers`` (the Anthropic door's version and beta headers) go with
messages and token counts passed through only: a translated request has no use for them,
and never carries them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from routing._anthropic_convert import estimate_tokens, messages_session_key, messages_to_chat
from routing._anthropic_reply import chat_to_message, translate_events
from routing._decision import Decision
from routing._operations import Operation
from routing._request_specs import validate_request
from routing.adapters import get_adapter
from routing.adapters._http import client_timeout
from routing.errors import BackendError, Reason

if TYPE_CHECKING:
    from routing._failover import RouterLike
    from routing.adapters.base import Adapter
    from routing.config import Instance

__all__ = ["Route", "count_tokens", "reported_model", "send_once", "stream_once"]


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


async def send_once(
    adapter: Adapter,
    session: aiohttp.ClientSession,
    inst: Instance,
    operation: Operation,
    model: str,
    request: Mapping[str, Any],
    timeout: aiohttp.ClientTimeout,
    *,
    extra_headers: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], bytes | None, str]:
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
            reply, raw = await adapter.send(
                session, inst, operation, model, request, timeout, extra_headers=extra_headers
            )
        except BackendError as exc:
            if exc.reason is not Reason.NOT_SUPPORTED:
                raise
            fallback = True
        else:
            return reply, raw, _passed(inst)
    chat = messages_to_chat(request)
    reply, _ = await adapter.chat_raw(session, inst, model, chat, timeout)
    return chat_to_message(reply), None, _translated(inst, fallback)


def stream_once(
    adapter: Adapter,
    session: aiohttp.ClientSession,
    inst: Instance,
    operation: Operation,
    model: str,
    request: Mapping[str, Any],
    timeout: aiohttp.ClientTimeout,
    *,
    extra_headers: Mapping[str, str] | None = None,
) -> tuple[AsyncIterator[dict[str, Any]], Route]:
    """The chunks (or events) of a streamed attempt, and its :class:`Route` (its note is
    known once the first item has arrived)."""
    route = Route()
    if operation is Operation.CHAT:
        return adapter.stream(session, inst, model, request, timeout), route
    if operation is Operation.MESSAGES:
        events = _messages(adapter, session, inst, model, request, timeout, route, extra_headers)
        return events, route
    return adapter.send_stream(session, inst, operation, model, request, timeout), route


async def _close(items: AsyncIterator[dict[str, Any]]) -> None:
    if isinstance(items, AsyncGenerator):
        await items.aclose()


async def _messages(
    adapter: Adapter,
    session: aiohttp.ClientSession,
    inst: Instance,
    model: str,
    request: Mapping[str, Any],
    timeout: aiohttp.ClientTimeout,
    route: Route,
    extra_headers: Mapping[str, str] | None,
) -> AsyncGenerator[dict[str, Any], None]:
    fallback = False
    if Operation.MESSAGES in adapter.passthrough(inst):
        events = adapter.send_stream(
            session,
            inst,
            Operation.MESSAGES,
            model,
            request,
            timeout,
            extra_headers=extra_headers,
        )
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
    chat = {**messages_to_chat(request), "stream": True, "stream_options": {"include_usage": True}}
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


async def count_tokens(
    router: RouterLike,
    request: Mapping[str, Any],
    *,
    provider: str | None = None,
    session: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], bytes | None, Decision]:
    """Anthropic's token count of a Messages ``request``: asked of the instance the request
    would go to when it speaks Messages natively (with ``extra_headers``), else estimated
    here (one token per four characters); the decision's reason says which.  A 4xx of the
    backend is raised."""
    validate_request("anthropic.messages", request)
    decision = await router.resolve(
        provider=provider,
        model=request.get("model"),
        session=messages_session_key(request, session),
        operation=Operation.MESSAGES,
    )
    inst = router.config.instances[decision.instance]
    adapter = get_adapter(inst.api)
    if Operation.COUNT_TOKENS in adapter.passthrough(inst):
        timeout = client_timeout(inst, inst.request_timeout)
        router.begin(inst.key)
        try:
            reply, raw = await adapter.send(
                router.session,
                inst,
                Operation.COUNT_TOKENS,
                decision.model or "",
                request,
                timeout,
                extra_headers=extra_headers,
            )
        except BackendError as exc:
            exc.redact(router.secrets)
            if not exc.reason.fails_over:
                raise
            note = f"token count estimated by the gateway ({inst.key} failed: {exc.reason})"
        else:
            return (
                reply,
                raw,
                dataclasses.replace(
                    decision, reason=f"{decision.reason}; token count by {inst.kind}"
                ),
            )
        finally:
            router.end(inst.key)
    else:
        note = f"token count estimated by the gateway ({inst.kind} has no token count API)"
    estimate = {"input_tokens": estimate_tokens(request)}
    return estimate, None, dataclasses.replace(decision, reason=f"{decision.reason}; {note}")
