"""The request methods of :class:`routing.Router`: each one a library door to an operation.

:class:`RouterRequests` is a base of the Router and holds only these methods; each shapes
its arguments into a request and hands the router to :mod:`routing._failover` (streams:
:mod:`routing._failover_stream`; token counts: :mod:`routing._dispatch`), which resolve,
send, fail over and report back through the router's own methods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from routing._dispatch import count_tokens
from routing._failover import Completion, complete
from routing._failover_stream import StreamHandle, open_stream, stream
from routing._operations import Operation

if TYPE_CHECKING:
    # For the type checker only: the methods below hand ``self`` to failover, so it must be
    # a RouterLike; the Router, which inherits them, is checked to implement all of it.
    from routing._failover import RouterLike as _RouterBase
else:
    _RouterBase = object

__all__ = ["RouterRequests"]


class RouterRequests(_RouterBase):
    """Sending requests with failover (a base of :class:`routing.Router`, not used alone)."""

    async def complete(
        self,
        request: Mapping[str, Any],
        *,
        provider: str | None = None,
        session: str | None = None,
        operation: Operation = Operation.CHAT,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Completion:
        """Send a request with failover; the reply, decision and attempts.

        ``request`` has the shape of ``operation``'s door (OpenAI chat by default; see
        :func:`routing._failover.complete`); ``session`` is an explicit sticky session id
        (the gateway's ``X-Session-ID``); ``extra_headers`` go with an Anthropic Messages
        request where it is passed through as sent (the Anthropic door sends the client's
        version and beta headers), never where it is translated, and never in place of an
        instance's credentials."""
        return await complete(
            self,
            request,
            provider=provider,
            session=session,
            operation=operation,
            extra_headers=extra_headers,
        )

    async def open_stream(
        self,
        request: Mapping[str, Any],
        *,
        provider: str | None = None,
        session: str | None = None,
        operation: Operation = Operation.CHAT,
        extra_headers: Mapping[str, str] | None = None,
    ) -> StreamHandle:
        """Start a stream with failover up to its first chunk; iterate the handle for chunks
        (or, for ``operation="messages"``, Anthropic's events); ``extra_headers`` as in
        :meth:`complete`."""
        return await open_stream(
            self,
            request,
            provider=provider,
            session=session,
            operation=operation,
            extra_headers=extra_headers,
        )

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str | None = None,
        provider: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Send a chat; return an OpenAI ``chat.completion`` dict whatever the backend's API."""
        request = {**params, "messages": list(messages), "model": model}
        completion = await self.complete(request, provider=provider)
        reply: dict[str, Any] = completion.reply
        return reply

    async def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str | None = None,
        provider: str | None = None,
        **params: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield OpenAI ``chat.completion.chunk`` dicts as the backend sends them."""
        # failover.stream closes the upstream response when the caller stops early.
        async for chunk in stream(self, messages, model=model, provider=provider, **params):
            yield chunk

    # -- the other operations (the doors' library equivalents) ----------------------------

    async def embed(
        self,
        input: str | Sequence[str],
        *,
        model: str | None = None,
        provider: str | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Embeddings of ``input`` (a text or texts) from an instance that can embed: an
        OpenAI embeddings list (``data[i].embedding``) whatever the backend's API style."""
        request = {
            **params,
            "input": input if isinstance(input, str) else list(input),
            "model": model,
        }
        return (
            await self.complete(request, provider=provider, operation=Operation.EMBEDDING)
        ).reply

    async def complete_text(
        self, prompt: str, *, model: str | None = None, provider: str | None = None, **params: Any
    ) -> dict[str, Any]:
        """A text completion of ``prompt`` (no chat template): an OpenAI
        ``text_completion`` dict (``choices[0].text``) whatever the backend's API style."""
        request = {**params, "prompt": prompt, "model": model}
        return (
            await self.complete(request, provider=provider, operation=Operation.COMPLETION)
        ).reply

    async def stream_text(
        self, prompt: str, *, model: str | None = None, provider: str | None = None, **params: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield the OpenAI ``text_completion`` chunks of a streamed text completion."""
        request = {**params, "prompt": prompt, "model": model, "stream": True}
        async with await self.open_stream(
            request, provider=provider, operation=Operation.COMPLETION
        ) as handle:
            async for chunk in handle:
                yield chunk

    async def message(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        provider: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Send Anthropic-shaped ``messages`` (``system``, ``max_tokens``, ``tools`` … in
        ``params``); return an Anthropic message whatever the backend's API style.
        ``extra_headers`` (``anthropic-beta`` …) as in :meth:`complete`."""
        request = {**params, "messages": list(messages), "model": model}
        done = await self.complete(
            request, provider=provider, operation=Operation.MESSAGES, extra_headers=extra_headers
        )
        return done.reply

    async def stream_message(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        provider: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        **params: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield Anthropic's stream events (dicts whose ``type`` is the event name);
        ``extra_headers`` as in :meth:`complete`."""
        request = {**params, "messages": list(messages), "model": model, "stream": True}
        async with await self.open_stream(
            request, provider=provider, operation=Operation.MESSAGES, extra_headers=extra_headers
        ) as handle:
            async for event in handle:
                yield event

    async def count_tokens(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        provider: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        **params: Any,
    ) -> int:
        """Anthropic's input token count of ``messages``: the backend's own where it has a
        count (Anthropic, llama.cpp), else an estimate (one token per four characters);
        ``extra_headers`` as in :meth:`complete`."""
        request = {**params, "messages": list(messages), "model": model}
        reply, _, _ = await count_tokens(
            self, request, provider=provider, extra_headers=extra_headers
        )
        return int(reply["input_tokens"])
