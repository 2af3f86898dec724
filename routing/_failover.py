"""Turn a Decision into an answer, failing over to alternatives before the first byte.

:func:`complete` (non-streaming, here) and :func:`~routing._failover_stream.open_stream`
(streaming, in :mod:`routing._failover_stream`) resolve a request, try the chosen instance,
then ``decision.alternatives`` in order, bounded by the retry budget (``defaults.retries``
failovers) and the request deadline: ``defaults.request_timeout`` bounds the whole request,
an instance's own ``request_timeout`` bounds one attempt on it (so an instance configured
with a short one fails over quickly when it hangs).  This module holds that shared plan
(``_Attempts``), the check of a reply's model name and the non-streaming side.

Decided on ``error.reason`` (see :mod:`routing.errors`): every reason but ``rejected`` fails
over to the next candidate before the first byte; ``rejected`` (a 4xx, the caller's error)
is raised at once, and anything after the first stream chunk reached the caller ends the
stream with a :class:`BackendError`.  When every attempt was ``overloaded`` (429) the error
raised is that one, with the shortest ``retry_after``, so the client can be told when to
come back.  Every error is redacted (``router.secrets``) before anything keeps or shows it.

Every failed attempt is reported (``router.report_failure`` and ``metrics.failover``); the
answering instance gets ``router.report_success`` and ``metrics.request``. A reply naming
another model than the one routed to is logged (logger ``routing``), counted
(``metrics.wrong``) and recorded in ``Decision.warnings``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from routing._anthropic_convert import messages_session_key
from routing._decision import Decision
from routing._dispatch import reported_model, send_once
from routing._metrics import Metrics
from routing._operations import Operation
from routing._request_specs import validate_openai_chat, validate_request
from routing._strategies import session_key
from routing.adapters import get_adapter
from routing.adapters._http import client_timeout
from routing.config import Config, Instance
from routing.errors import BackendError, BackendTimeout, Reason

__all__ = [
    "Completion",
    "RouterLike",
    "chat",
    "complete",
    "model_matches",
]

logger = logging.getLogger("routing")

Attempt = tuple[str, BaseException | None]


class RouterLike(Protocol):
    """What failover needs of a router (:class:`routing.Router` is the implementation)."""

    config: Config
    metrics: Metrics
    secrets: tuple[str, ...]

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session requests go out on."""
        ...

    async def resolve(
        self,
        provider: str | None = None,
        model: str | None = None,
        *,
        session: str | Callable[[], str | None] | None = None,
        operation: Operation = Operation.CHAT,
    ) -> Decision:
        """Decide where a request for ``model`` goes (``session``: the sticky key) to have
        ``operation`` done."""
        ...

    def begin(self, key: str) -> None:
        """A request to ``key`` starts (in flight)."""
        ...

    def end(self, key: str) -> None:
        """A request to ``key`` is over."""
        ...

    def reroute(self, decision: Decision, key: str) -> Decision:
        """The decision for alternative ``key`` of ``decision``."""
        ...

    def report_failure(self, key: str, error: BackendError) -> None:
        """A request to ``key`` failed with ``error``."""
        ...

    def report_success(self, key: str) -> None:
        """A request to ``key`` succeeded."""
        ...

    def report_unsupported(self, key: str, operation: Operation) -> None:
        """``key`` answered ``not_supported`` for ``operation``."""
        ...


# Dated snapshots a hosted API answers with: gpt-4o-mini -> gpt-4o-mini-2024-07-18,
# claude-3-5-haiku-latest -> claude-3-5-haiku-20241022.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


@dataclass(slots=True)
class Completion:
    """A non-streaming answer: the OpenAI-shaped ``reply``, the ``decision`` of the instance
    that answered, every ``attempt`` as ``(instance, error or None)``, and the failover count.

    ``raw`` is the reply's JSON as the backend sent it when those bytes encode ``reply``
    exactly (OpenAI-style backends), else ``None``: the gateway forwards it as is.
    """

    reply: dict[str, Any]
    decision: Decision
    attempts: list[Attempt] = field(default_factory=list)
    failovers: int = 0
    raw: bytes | None = None


def model_matches(routed: str, reported: str, aliases: Mapping[str, str] = {}) -> bool:
    """True when a reply naming ``reported`` plausibly came from model ``routed``.

    Accepted: equal after normalising (case, an Ollama ``:latest`` tag, a directory
    prefix), a name the instance's ``aliases`` map to the other, or a dated snapshot of
    the routed name (``gpt-4o-mini`` -> ``gpt-4o-mini-2024-07-18``).
    """
    a, b = _normal(routed), _normal(reported)
    if a == b:
        return True
    for alias, target in aliases.items():
        pair = {_normal(alias), _normal(target)}
        if a in pair and b in pair:
            return True
    base = a.removesuffix("-latest")
    return b.startswith(base) and _SNAPSHOT.fullmatch(b[len(base) :]) is not None


def _normal(name: str) -> str:
    name = name.strip().lower().rsplit("/", 1)[-1]
    return name.removesuffix(":latest")


#: Seconds of the request's deadline a failover needs at least: with less left, no further
#: attempt is made.  An attempt that timed out on the deadline can end a sliver before it: its
#: timeout is rounded down to whole milliseconds (client_timeout) and uvloop times its timers in
#: whole milliseconds from the start of a loop turn.  A sliver is no time to try another
#: instance: whether one answered in it would depend on timer rounding, not on the deadline.
MIN_FAILOVER = 0.01


class _Attempts:
    """The plan of one request: candidates in order, the deadline, what happened so far."""

    __slots__ = ("attempts", "deadline", "decision", "keys", "operation", "router")

    def __init__(
        self, router: RouterLike, decision: Decision, operation: Operation = Operation.CHAT
    ) -> None:
        self.router = router
        self.decision = decision
        self.operation = operation
        first = router.config.instances[decision.instance]
        whole = max(router.config.defaults.request_timeout, first.request_timeout)
        self.deadline = time.monotonic() + whole
        budget = max(router.config.defaults.retries, 0) + 1
        self.keys = (decision.instance, *decision.alternatives)[:budget]
        self.attempts: list[Attempt] = []

    def each(self) -> Iterator[tuple[int, Decision, Instance, str, aiohttp.ClientTimeout]]:
        """Each candidate while the deadline allows (a failover: :data:`MIN_FAILOVER` left at
        least): the failovers before it, its decision (made only when the previous one
        failed), instance, model name and timeout."""
        instances = self.router.config.instances
        for failovers, key in enumerate(self.keys):
            remaining = self.remaining()
            if remaining <= 0 or (failovers and remaining < MIN_FAILOVER):
                return
            inst = instances[key]
            current = self.decision if failovers == 0 else self.router.reroute(self.decision, key)
            model = current.model or current.requested_model or ""
            timeout = client_timeout(inst, min(inst.request_timeout, remaining))
            yield failovers, current, inst, model, timeout

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def failed(self, decision: Decision, exc: BackendError, seconds: float) -> None:
        key = decision.instance
        exc.redact(self.router.secrets)
        self.attempts.append((key, exc))
        self.router.metrics.request(key, decision.model or "", exc.reason, seconds)
        if exc.reason.fails_over:
            self.router.report_failure(key, exc)
            self.router.metrics.failover(key, exc.reason)
        if exc.reason is Reason.NOT_SUPPORTED:
            self.router.report_unsupported(key, self.operation)

    def final_error(self) -> BackendError:
        """What to raise when no attempt answered: the last attempt's error (429 when every
        attempt was rate-limited), or a timeout when the deadline left none."""
        errors = [e for _, e in self.attempts if isinstance(e, BackendError)]
        if errors and all(e.reason is Reason.OVERLOADED for e in errors):
            waits = [e.retry_after for e in errors if e.retry_after is not None]
            best = errors[-1]
            best.retry_after = min(waits) if waits else None
            return best
        return errors[-1] if errors else _deadline_error(self.decision, self)

    def verified(self, decision: Decision, inst: Instance, reported: Any) -> Decision:
        routed = decision.model
        if routed == reported or not routed or not isinstance(reported, str) or not reported:
            return decision  # (the same name, the common case, needs no normalising)
        if model_matches(routed, reported, inst.aliases):
            return decision
        logger.warning("%s answered as model %r, routed to model %r", inst.key, reported, routed)
        self.router.metrics.wrong(inst.key, routed, reported)
        note = f"{inst.key} answered as model {reported!r}, routed to {routed!r}"
        return dataclasses.replace(decision, warnings=(*decision.warnings, note))


#: The request description (:data:`routing._request_specs.REQUESTS`) of each operation.
_SPECS = {
    Operation.COMPLETION: "openai.completion",
    Operation.EMBEDDING: "openai.embedding",
    Operation.MESSAGES: "anthropic.messages",
}


def _prepare(
    operation: Operation, request: Mapping[str, Any], session: str | None
) -> Callable[[], str | None]:
    """Check ``request`` for ``operation`` (InvalidRequest); return how to get its sticky
    session key (computed only if a sticky strategy asks: it hashes the prompt)."""
    if operation is Operation.CHAT:
        validate_openai_chat(request)
    else:
        validate_request(_SPECS[operation], request)
    if operation is Operation.MESSAGES:
        return functools.partial(messages_session_key, request, session)
    return functools.partial(session_key, request, session)


async def planned(
    router: RouterLike,
    request: Mapping[str, Any],
    provider: str | None,
    session: str | None,
    operation: Operation,
) -> _Attempts:
    """Check ``request`` and decide where it goes: the plan of its attempts."""
    sticky = _prepare(operation, request, session)
    decision = await router.resolve(
        provider=provider, model=request.get("model"), session=sticky, operation=operation
    )
    return _Attempts(router, decision, operation)


def _noted(decision: Decision, note: str) -> Decision:
    return dataclasses.replace(decision, reason=f"{decision.reason}; {note}") if note else decision


async def complete(
    router: RouterLike,
    request: Mapping[str, Any],
    *,
    provider: str | None = None,
    session: str | None = None,
    operation: Operation = Operation.CHAT,
    extra_headers: Mapping[str, str] | None = None,
) -> Completion:
    """Answer a ``request`` for ``operation`` (non-streaming), failing over as needed.

    ``request`` has the shape of the operation's door: an OpenAI chat, text-completions or
    embeddings body, or an Anthropic Messages body (``operation="messages"``; the reply is
    then a message).  ``session`` is an explicit session id (``X-Session-ID``) for the sticky
    strategy; without one the request's ``user`` (Anthropic: ``metadata.user_id``), else its
    system prompt and first user message, key it.  ``extra_headers`` go with an Anthropic
    Messages request to the instances taking it as sent (never to those it is translated for,
    and never in place of an instance's credentials).

    Raises :class:`~routing.errors.NoRouteError` when nothing serves the model, the
    :class:`BackendRejected` of a 4xx at once, or the last attempt's :class:`BackendError`;
    :class:`~routing.errors.InvalidRequest` before anything else for a malformed request
    (and for a field that cannot be translated for the backend chosen).
    """
    plan = await planned(router, request, provider, session, operation)
    for failovers, current, inst, model, timeout in plan.each():
        started = time.perf_counter()
        router.begin(inst.key)
        try:
            reply, raw, note = await send_once(
                get_adapter(inst.api),
                router.session,
                inst,
                operation,
                model,
                request,
                timeout,
                extra_headers=extra_headers,
            )
        except BackendError as exc:
            plan.failed(current, exc, time.perf_counter() - started)
            if not exc.reason.fails_over:
                raise
            continue
        finally:
            router.end(inst.key)
        router.report_success(inst.key)
        router.metrics.request(inst.key, model, "ok", time.perf_counter() - started)
        plan.attempts.append((inst.key, None))
        current = plan.verified(_noted(current, note), inst, reported_model(operation, reply))
        return Completion(reply, current, plan.attempts, failovers, raw)
    raise plan.final_error()


def _deadline_error(decision: Decision, plan: _Attempts) -> BackendTimeout:
    return BackendTimeout(
        f"request deadline passed after {len(plan.attempts)} attempt(s)", instance=decision.instance
    )


async def chat(
    router: RouterLike,
    messages: Sequence[Mapping[str, Any]],
    *,
    model: str | None = None,
    provider: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Send a chat; return an OpenAI ``chat.completion`` dict whatever the backend's API."""
    request = {**params, "messages": messages, "model": model}
    return (await complete(router, request, provider=provider)).reply
