"""Start a stream from a Decision, failing over to alternatives until its first chunk.

:func:`open_stream` follows the plan of :mod:`routing._failover` (candidates in order, the
retry budget, the request deadline, an instance's own ``request_timeout`` per attempt) and
decides on ``error.reason`` as :func:`routing._failover.complete` does, up to the first
chunk: until then every reason but ``rejected`` fails over to the next candidate.  Once a
first chunk has arrived the stream is the caller's: a failure after it ends the stream with
a :class:`BackendError` and is never retried.

The answering instance counts the stream in flight (``router.begin``) until its
:class:`StreamHandle` is exhausted, fails, or is closed; ``metrics.request`` records it then,
with the outcome (``ok``, the error's reason, ``closed`` or ``cancelled``). Closing a handle
closes the connection, which cancels the request upstream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from routing._decision import Decision
from routing._dispatch import reported_model, stream_once
from routing._failover import Attempt, RouterLike, _noted, planned
from routing._operations import Operation
from routing.adapters import get_adapter
from routing.config import Instance
from routing.errors import BackendError, BackendProtocolError

__all__ = ["StreamHandle", "open_stream", "stream"]


class StreamHandle:
    """A stream whose first chunk has arrived: iterate it for every chunk (first included).

    ``decision`` is that of the instance actually answering, ``failovers`` how many
    instances failed before it, ``attempts`` as in :class:`~routing._failover.Completion`.
    Close it early with :meth:`aclose` (or ``async with``) to release the connection and
    cancel upstream.
    A failure after the first chunk raises a :class:`BackendError`; it is never retried.
    """

    __slots__ = (
        "_chunks",
        "_done",
        "_first",
        "_inst",
        "_model",
        "_router",
        "_started",
        "attempts",
        "decision",
        "failovers",
    )

    def __init__(
        self,
        router: RouterLike,
        inst: Instance,
        chunks: AsyncIterator[dict[str, Any]],
        first: dict[str, Any],
        decision: Decision,
        attempts: list[Attempt],
        failovers: int,
        started: float,
    ) -> None:
        self._router = router
        self._inst = inst
        self._chunks = chunks
        self._first: dict[str, Any] | None = first
        self._model = decision.model or ""
        self._started = started
        self._done = False
        self.decision = decision
        self.attempts = attempts
        self.failovers = failovers

    def __aiter__(self) -> StreamHandle:
        return self

    async def __anext__(self) -> dict[str, Any]:
        first = self._first
        if first is not None:
            self._first = None
            return first
        if self._done:
            raise StopAsyncIteration
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            self._finish("ok")
            raise
        except BackendError as exc:
            exc.redact(self._router.secrets)
            self._router.report_failure(self._inst.key, exc)
            self._finish(exc.reason)
            raise
        except BaseException:
            self._finish("cancelled")
            await self.aclose()
            raise

    def _finish(self, outcome: str) -> None:
        if not self._done:
            self._done = True
            self._router.end(self._inst.key)
            self._router.metrics.request(
                self._inst.key, self._model, outcome, time.perf_counter() - self._started
            )

    async def aclose(self) -> None:
        """Stop reading: the connection is closed, which cancels the request upstream."""
        self._finish("closed")
        self._first = None
        await _close(self._chunks)

    async def __aenter__(self) -> StreamHandle:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _close(chunks: AsyncIterator[dict[str, Any]]) -> None:
    if isinstance(chunks, AsyncGenerator):
        await chunks.aclose()


async def open_stream(
    router: RouterLike,
    request: Mapping[str, Any],
    *,
    provider: str | None = None,
    session: str | None = None,
    operation: Operation = Operation.CHAT,
    extra_headers: Mapping[str, str] | None = None,
) -> StreamHandle:
    """Start a stream, failing over until a first chunk arrives; return its handle.

    Raises like :func:`~routing._failover.complete` when no instance produces a first
    chunk; ``session``, ``operation`` and ``extra_headers`` as there (text completions stream
    OpenAI chunks, messages Anthropic's events as dicts whose ``type`` is the event name).
    The instance counts the stream in flight until the handle is finished or closed.
    """
    plan = await planned(router, request, provider, session, operation)
    for failovers, current, inst, model, timeout in plan.each():
        started = time.perf_counter()
        chunks, route = stream_once(
            get_adapter(inst.api),
            router.session,
            inst,
            operation,
            model,
            request,
            timeout,
            extra_headers=extra_headers,
        )
        router.begin(inst.key)
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            exc: BackendError = BackendProtocolError(
                "stream ended before its first chunk", instance=inst.key
            )
        except BackendError as error:
            exc = error
        except BaseException:
            router.end(inst.key)
            await _close(chunks)
            raise
        else:
            router.report_success(inst.key)
            plan.attempts.append((inst.key, None))
            current = plan.verified(
                _noted(current, route.note), inst, reported_model(operation, first)
            )
            return StreamHandle(
                router, inst, chunks, first, current, plan.attempts, failovers, started
            )
        router.end(inst.key)
        await _close(chunks)
        plan.failed(current, exc, time.perf_counter() - started)
        if not exc.reason.fails_over:
            raise exc
    raise plan.final_error()


async def stream(
    router: RouterLike,
    messages: Sequence[Mapping[str, Any]],
    *,
    model: str | None = None,
    provider: str | None = None,
    **params: Any,
) -> AsyncIterator[dict[str, Any]]:
    """Yield OpenAI ``chat.completion.chunk`` dicts as the backend sends them.

    Closing this generator early closes the upstream connection.
    """
    request = {**params, "messages": messages, "model": model, "stream": True}
    async with await open_stream(router, request, provider=provider) as handle:
        async for chunk in handle:
            yield chunk
