"""The Router: live probes + compiled rules -> a :class:`~routing._decision.Decision`.

Resolution (the contract of DESIGN.md):

1. ``provider:instance`` given: that instance; a model it does not serve is a NoRouteError.
2. ``provider`` given: its instances are the candidates; else the first matching rule's.
3. Candidates are probed concurrently (cached for ``ttl``; one timeout bounds the fan-out);
   the first READY one (declaration order) whose live list serves the model wins.
4. No model given: the first READY candidate and its first model.
5. Nothing left: NoRouteError listing every candidate.  ``fallback: any-ready`` is the
   only way to send a model to an instance that does not list it, and the decision says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import aiohttp

from routing._decision import Candidate, Decision, State
from routing._dispatch import count_tokens
from routing._failover import Completion, StreamHandle, complete, open_stream, stream
from routing._health import Breaker, InstanceHealth, ProbeResult
from routing._metrics import Metrics
from routing._operations import Operation
from routing._probes import probe_instance
from routing._rules import RuleSet
from routing._strategies import Candidacy, Strategy, Warmth, order
from routing.adapters import get_adapter
from routing.config import Config, Instance, load_config
from routing.errors import (
    BackendError,
    BackendUnavailable,
    NoRouteError,
    Reason,
    redact_text,
)

__all__ = ["Router"]

logger = logging.getLogger("routing")

#: How long an instance cools down after a 429 that named no ``Retry-After``.
DEFAULT_COOLDOWN = 1.0

# Request failures (by reason) that take an instance out at once, and the state they mean.
# server_error is absent: one request's 500 (a template error for that request alone) must not
# take the instance from everyone; the probe it triggers decides.  rejected and not_supported
# say nothing about health; overloaded cools the instance down instead.
_FAILURE_STATE: dict[Reason, State] = {
    Reason.REFUSED: State.DOWN,
    Reason.TIMEOUT: State.DOWN,
    Reason.LOADING: State.LOADING,
    Reason.PROTOCOL: State.UNHEALTHY,
    Reason.UNAUTHORIZED: State.MISCONFIGURED,
}


class Router:
    """Decides which instance serves a request, and (through adapters) sends it there.

    Use as ``async with Router.from_file(path) as router:``; one aiohttp session serves
    every probe and request of the router.  ``clock`` is injectable so tests never sleep.
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics = Metrics()
        self.rules = RuleSet(config)
        self._health = {
            key: InstanceHealth(inst, Breaker(config.defaults.breaker))
            for key, inst in config.instances.items()
        }
        self._inflight: dict[str, asyncio.Task[ProbeResult]] = {}
        self._session = session
        self._own_session = session is None
        self.secrets = _secrets(config)
        self._busy: dict[str, int] = {}  # requests in flight per instance (ours)
        # Operations an instance answered not_supported for (until it is seen not READY),
        # and what its API style can do at all (read once: resolve is the hot path).
        self._unsupported: dict[str, set[Operation]] = {}
        self._operations = {
            key: get_adapter(inst.api).operations for key, inst in config.instances.items()
        }
        self._rotation: dict[tuple[str, ...], int] = {}
        # Probes ask servers for their load only when a strategy will read it.
        load_aware = {Strategy.LEAST_BUSY, Strategy.STICKY}
        self._load_aware = Strategy(config.defaults.strategy) in load_aware or any(
            r.strategy is not None and Strategy(r.strategy) in load_aware for r in config.rules
        )

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Router:
        """Load, validate and build a router from a YAML config file (raises ConfigError)."""
        return cls(load_config(path, environ), clock=clock)

    async def __aenter__(self) -> Router:
        _ = self.session
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The router's one HTTP session (created on first use, inside the running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            # No cookie jar: a cookie one backend sets must never ride along on another
            # client's request (and nothing is stored or matched per request).
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar()
            )
            self._own_session = True
        return self._session

    async def aclose(self) -> None:
        """Cancel background probes and close the session (when the router made it)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()

    # -- probing -------------------------------------------------------------------------

    def instance(self, key: str) -> Instance:
        """The configured instance named ``provider:instance`` (KeyError if unknown)."""
        return self.config.instances[key]

    def _probe(self, key: str) -> asyncio.Task[ProbeResult]:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._run_probe(key))
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._forget_probe, key))
        return task

    def _forget_probe(self, key: str, task: asyncio.Task[ProbeResult]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _run_probe(self, key: str) -> ProbeResult:
        health = self._health[key]
        try:
            result = await probe_instance(
                self.session, health.instance, self.clock, load=self._load_aware
            )
        except Exception as exc:  # a bug or a hostile reply: reported as what it is
            logger.error("probe of %s crashed: %s", key, type(exc).__name__)
            result = ProbeResult(
                State.UNHEALTHY, detail=f"probe crashed: {type(exc).__name__}", at=self.clock()
            )
        if self.secrets and result.detail:
            result = dataclasses.replace(result, detail=redact_text(result.detail, self.secrets))
        if health.misconfigured and result.state != State.READY:
            return health.result or result  # refused credentials stay refused until reload
        if not result.ready:  # a restart may bring other flags (llama.cpp --embeddings)
            self._unsupported.pop(key, None)
        health.record(result)
        self.metrics.probe(key, result.state)
        return result

    async def _ensure(self, keys: Iterable[str]) -> dict[str, ProbeResult]:
        """Fresh-enough results for ``keys``; probes what is missing, within one timeout."""
        now = self.clock()
        ttl = self.config.defaults.probe.ttl
        waits: dict[str, asyncio.Task[ProbeResult]] = {}
        results: dict[str, ProbeResult] = {}
        for key in keys:
            health = self._health[key]
            result = health.result
            if result is not None and (now - result.at < ttl or health.misconfigured):
                results[key] = result  # fresh, or refused credentials: no probe until reload
            elif result is not None and not health.breaker.allows_probe(now):
                results[key] = result  # breaker open: no probe until its backoff has passed
            elif result is not None and result.ready:
                results[key] = result  # stale but READY: serve it, refresh behind the scenes
                self._probe(key)
            else:
                waits[key] = self._probe(key)
        if waits:
            timeout = self.config.defaults.probe.timeout
            done, _ = await asyncio.wait(waits.values(), timeout=timeout)
            for key, task in waits.items():
                if task in done and not task.cancelled():
                    results[key] = task.result()  # _run_probe never raises
                else:
                    # Remembered (without counting a breaker failure: the probe still running
                    # will) so the next resolve does not wait for the same hung probe again.
                    # The last known model list is kept: its models are down, not unknown.
                    result = ProbeResult(
                        State.DOWN,
                        detail=f"probe gave no answer within {timeout:g}s",
                        at=self.clock(),
                    )
                    self._health[key].record(result, count=False)
                    results[key] = result
        return results

    async def refresh(self, keys: Iterable[str] | None = None) -> None:
        """Probe ``keys`` (default: every instance) now, whatever the cache says."""
        tasks = [self._probe(k) for k in (keys if keys is not None else self._health)]
        if tasks:
            await asyncio.wait(tasks, timeout=self.config.defaults.probe.timeout)

    # -- resolution ----------------------------------------------------------------------

    def _candidates(
        self, provider: str | None, model: str | None
    ) -> tuple[tuple[str, ...], str | None, str]:
        if provider is None:
            keys, rule = self.rules.candidates(model)
            how = f"rule {rule}" if rule else "no rule matched: every instance considered"
            return keys, rule, how
        if ":" in provider:
            if provider not in self.config.instances:
                known = ", ".join(self.config.instances)
                raise NoRouteError(
                    f"unknown instance {provider!r} (known: {known})",
                    model=model,
                    provider=provider,
                )
            return (provider,), None, f"instance {provider} named by the caller"
        prov = self.config.providers.get(provider)
        if prov is None:
            known = ", ".join(self.config.providers)
            raise NoRouteError(
                f"unknown provider {provider!r} (known: {known})", model=model, provider=provider
            )
        return tuple(i.key for i in prov.instances), None, f"provider {provider} chosen by caller"

    async def resolve(
        self,
        provider: str | None = None,
        model: str | None = None,
        *,
        session: str | Callable[[], str | None] | None = None,
        operation: Operation = Operation.CHAT,
    ) -> Decision:
        """Decide where a request for ``model`` (optionally on ``provider``) goes.

        Among the READY candidates that serve the model and can do ``operation``, warm ones
        come first, then the rule's (or ``defaults.strategy``) order; ``session`` is the
        sticky strategy's key, or a function giving it (called only when sticky).  Raises
        :class:`NoRouteError` when no READY candidate serves the model; its ``candidates``
        say, for each instance asked, its state and its models (``unsupported`` is set when
        the model is served, but by none that can do the operation).
        """
        keys, rule, how = self._candidates(provider, model)
        results = await self._ensure(keys)
        return self._decide(keys, results, provider, model, rule, how, session, operation)

    def _cannot(self, key: str, operation: Operation) -> str:
        """Why ``key`` cannot do ``operation`` ("" when it can)."""
        if operation not in self._operations[key]:
            return f"cannot do {operation.noun} (API style {self.config.instances[key].api})"
        unsupported = self._unsupported.get(key)
        if unsupported and operation in unsupported:
            return f"cannot do {operation.noun} (not_supported)"
        return ""

    def report_unsupported(self, key: str, operation: Operation) -> None:
        """``key`` answered ``not_supported`` for ``operation``: skip it for that operation
        (no health penalty) until it is seen not READY or the config reloads."""
        if key in self._health:
            self._unsupported.setdefault(key, set()).add(operation)

    def _strategy(self, model: str | None, provider: str | None) -> Strategy:
        rule = self.rules.first_match(model) if provider is None else None
        if rule is not None and rule.rule.strategy:
            return _STRATEGIES[rule.rule.strategy]
        return _STRATEGIES[self.config.defaults.strategy]

    def _decide(
        self,
        keys: Sequence[str],
        results: Mapping[str, ProbeResult],
        provider: str | None,
        model: str | None,
        rule: str | None,
        how: str,
        session: str | Callable[[], str | None] | None = None,
        operation: Operation = Operation.CHAT,
    ) -> Decision:
        serving: list[Candidacy] = []
        sent_ids: dict[str, str] = {}
        first_ready: str | None = None
        cooling: list[tuple[float, str]] = []
        trace: list[tuple[str, ProbeResult, str]] = []
        unable_keys: list[str] = []
        now = self.clock()
        ready_state = State.READY
        # Per-candidate work is inlined: this loop runs for every candidate of every request.
        healths, operations, unsupported, busy = (
            self._health,
            self._operations,
            self._unsupported,
            self._busy,
        )
        loaded_state, loading_state, loadable_state = (
            Warmth.LOADED,
            Warmth.LOADING,
            Warmth.LOADABLE,
        )
        for key in keys:
            result = results[key]
            health = healths[key]
            if result.state != ready_state:
                why = result.detail or result.state
                if model is not None and model in health.names:
                    why += f" (served {model!r} when last seen)"
                trace.append((key, result, why))
                continue
            able = operation in operations[key] and not (
                unsupported and operation in unsupported.get(key, ())
            )
            unable = "" if able else self._cannot(key, operation)
            if able:
                first_ready = first_ready or key
            if model is None:
                sent = result.models[0] if result.models else None
            else:
                sent = health.names.get(model)
            wait = health.cool_until - now
            if sent is None:
                why = "serves no model" if model is None else f"does not serve {model!r}"
            elif unable:
                why = unable
                unable_keys.append(key)
            elif wait > 0:
                cooling.append((wait, key))
                why = f"cooling down for {wait:.1f}s after HTTP 429"
            else:
                loaded = result.loaded
                if loaded is None or sent in loaded:
                    warmth = loaded_state
                else:
                    warmth = loading_state if sent in result.loading else loadable_state
                serving.append(Candidacy(key, warmth, busy.get(key, 0), result.busy, result.slots))
                sent_ids[key] = sent
                why = ""
            trace.append((key, result, why))
        fallback_used = False
        chosen: tuple[str, str] | None = None
        alternatives: tuple[str, ...] = ()
        reasons: dict[str, str] = {}
        strategy = self._strategy(model, provider)
        if serving:
            rotation = 0
            if strategy is Strategy.ROUND_ROBIN:
                ring = tuple(c.key for c in serving)
                rotation = self._rotation.get(ring, 0)
                self._rotation[ring] = rotation + 1
                if len(self._rotation) > 4096:  # bounded, whatever models callers name
                    self._rotation.clear()
            if strategy is Strategy.STICKY and callable(session):
                session = session()  # hashed only now: no other strategy needs it
            ordered, reasons = order(
                serving,
                strategy,
                rotation=rotation,
                session=session if isinstance(session, str) else None,
            )
            chosen = (ordered[0].key, sent_ids[ordered[0].key])
            alternatives = tuple(c.key for c in ordered[1:])
        elif cooling:
            wait, key = min(cooling)
            raise BackendUnavailable(
                f"the READY instances serving {model!r} are all rate-limited (HTTP 429)",
                reason=Reason.OVERLOADED,
                instance=key,
                retry_after=wait,
                status=429,
            )
        elif model is not None and first_ready is not None and self.config.fallback == "any-ready":
            chosen, fallback_used = (first_ready, model), True
        if chosen is None:
            raise self._no_route(trace, provider, model, operation if unable_keys else None)
        key, sent = chosen
        candidates = tuple(
            Candidate(
                k,
                r.state,
                r.models,
                k == key,
                _why(k, key, why, reasons, fallback_used, alternatives),
                busy.get(k, 0),
                r.models if r.loaded is None else r.loaded,
            )
            if r.state == ready_state
            else Candidate(k, r.state, self._health[k].known_models, False, why)
            for k, r, why in trace
        )
        inst = self.config.instances[key]
        if fallback_used:
            reason = (
                f"fallback any-ready: no READY candidate serves {model!r}; sent to {key}, "
                "which does not list it"
            )
        elif model is None:
            reason = f"no model named: first READY candidate and its first model ({how})"
        else:
            reason = f"{key} serves {model!r} ({how}; strategy {strategy}: {reasons[key]})"
        return Decision(
            provider=inst.provider,
            instance=key,
            base_url=inst.base_url,
            api=inst.api,
            model=sent,
            reason=reason,
            trace=candidates,
            rule=rule,
            requested_model=model,
            fallback_used=fallback_used,
            alternatives=alternatives,
        )

    def _models_of(self, key: str, result: ProbeResult) -> tuple[str, ...]:
        """The live list of a READY instance; the last known one of any other."""
        return result.models if result.ready else self._health[key].known_models

    def _no_route(
        self,
        trace: list[tuple[str, ProbeResult, str]],
        provider: str | None,
        model: str | None,
        unable: Operation | None = None,
    ) -> NoRouteError:
        candidates = [
            Candidate(k, r.state, self._models_of(k, r), False, why) for k, r, why in trace
        ]
        listing = "; ".join(
            f"{c.instance} {c.state} [{', '.join(c.models) or '-'}] {c.why}" for c in candidates
        )
        what = f"model {model!r}" if model is not None else "any model"
        if unable is not None:  # served, but by none that can do the operation
            headline = f"no READY instance serving {what} can do {unable.noun}"
            error = NoRouteError(
                f"{headline}: {listing}", model=model, provider=provider, candidates=candidates
            )
            error.unsupported, error.headline = True, headline
            return error
        error = NoRouteError(
            f"no READY instance serves {what}: {listing or 'no candidates'}",
            model=model,
            provider=provider,
            candidates=candidates,
        )
        # 503, not 404: nothing is READY, or the model's own servers are down (their last
        # known lists still name it).
        served_when_seen = model is not None and any(
            model in self._health[k].names for k, r, _ in trace if not r.ready
        )
        error.unavailable = bool(candidates) and (
            served_when_seen or not any(c.state == State.READY for c in candidates)
        )
        error.headline = f"no READY instance serves {what}"
        return error

    def reroute(self, decision: Decision, key: str) -> Decision:
        """The decision for alternative ``key`` of ``decision`` (same model, same request)."""
        health = self._health[key]
        inst = health.instance
        requested = decision.requested_model
        sent = health.names.get(requested) if requested is not None else decision.model
        return Decision(
            provider=inst.provider,
            instance=key,
            base_url=inst.base_url,
            api=inst.api,
            model=sent or requested,
            reason=f"failover from {decision.instance}: {key} also serves {requested!r}",
            trace=decision.trace,
            rule=decision.rule,
            requested_model=requested,
            alternatives=tuple(k for k in decision.alternatives if k != key),
        )

    # -- feedback from requests ----------------------------------------------------------

    def report_failure(self, key: str, error: BackendError) -> None:
        """A request to ``key`` failed: act on ``error.reason``.

        refused, timeout, loading, protocol: the instance is out until a probe says
        otherwise.  unauthorized: MISCONFIGURED until reload.  overloaded: a cooldown of
        ``retry_after`` (default 1 s), no health penalty.  server_error: a probe is started
        and its answer decides (one request's 500 never takes the instance from everyone).
        rejected, not_supported: nothing.
        """
        health = self._health.get(key)
        if health is None:
            return
        reason = error.reason
        now = self.clock()
        if reason is Reason.OVERLOADED:
            wait = error.retry_after if error.retry_after is not None else DEFAULT_COOLDOWN
            health.cool_until = max(health.cool_until, now + wait)
            return
        if reason is Reason.SERVER_ERROR:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to confirm
                self._probe(key)
            return
        state = _FAILURE_STATE.get(reason)
        if state is None:
            return
        detail = redact_text(error.detail, self.secrets)
        health.record(ProbeResult(state, detail=f"request failed: {detail}", at=now))

    def begin(self, key: str) -> None:
        """A request to ``key`` starts (counted in flight until :meth:`end`)."""
        self._busy[key] = self._busy.get(key, 0) + 1

    def end(self, key: str) -> None:
        """A request to ``key`` is over (answered, failed, or its stream closed)."""
        left = self._busy.get(key, 0) - 1
        if left > 0:
            self._busy[key] = left
        else:
            self._busy.pop(key, None)

    def inflight(self, key: str) -> int:
        """Requests this router has in flight on ``key``."""
        return self._busy.get(key, 0)

    def report_success(self, key: str) -> None:
        """A request to ``key`` succeeded: close its breaker."""
        health = self._health.get(key)
        if health is not None:
            health.breaker.success()

    # -- views ---------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Every instance: state, models, breaker, last probe age (no secrets)."""
        now = self.clock()
        out = []
        for key, h in self._health.items():
            r = h.result
            age = h.age(now)
            out.append(
                {
                    "instance": key,
                    "provider": h.instance.provider,
                    "api": h.instance.api,
                    "kind": h.instance.kind,
                    "url": h.instance.url,
                    "state": h.state,
                    "models": list(h.known_models),
                    "loaded": list(_loaded_of(r)) if r else [],
                    "loading": list(r.loading) if r else [],
                    "inflight": self._busy.get(key, 0),
                    "unsupported": sorted(self._unsupported.get(key, ())),
                    "server_busy": r.busy if r else None,
                    "slots": r.slots if r else None,
                    "detail": r.detail if r else "never probed",
                    "cooling_down": round(h.cooling(now), 3),
                    "breaker": h.breaker.state,
                    "failures": h.breaker.failures,
                    "last_probe_age": None if age is None else round(age, 3),
                }
            )
        return out

    async def models(self) -> list[tuple[str, str]]:
        """(model id, ``provider:instance``) for every model of every READY instance."""
        results = await self._ensure(self._health)
        return [(m, k) for k, r in results.items() if r.ready for m in r.models]

    # -- requests (adapters + failover) --------------------------------------------------

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
        **params: Any,
    ) -> dict[str, Any]:
        """Send Anthropic-shaped ``messages`` (``system``, ``max_tokens``, ``tools`` … in
        ``params``); return an Anthropic message whatever the backend's API style."""
        request = {**params, "messages": list(messages), "model": model}
        return (await self.complete(request, provider=provider, operation=Operation.MESSAGES)).reply

    async def stream_message(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        provider: str | None = None,
        **params: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield Anthropic's stream events (dicts whose ``type`` is the event name)."""
        request = {**params, "messages": list(messages), "model": model, "stream": True}
        async with await self.open_stream(
            request, provider=provider, operation=Operation.MESSAGES
        ) as handle:
            async for event in handle:
                yield event

    async def count_tokens(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        model: str,
        provider: str | None = None,
        **params: Any,
    ) -> int:
        """Anthropic's input token count of ``messages``: the backend's own where it has a
        count (Anthropic, llama.cpp), else an estimate (one token per four characters)."""
        request = {**params, "messages": list(messages), "model": model}
        reply, _, _ = await count_tokens(self, request, provider=provider)
        return int(reply["input_tokens"])


def _secrets(config: Config) -> tuple[str, ...]:
    """Every credential the router may send (keys and their header forms), longest first."""
    found: set[str] = set()
    for inst in config.instances.values():
        key = inst.api_key()
        if key and len(key) >= 4:
            found.update((key, f"Bearer {key}"))
    return tuple(sorted(found, key=len, reverse=True))


_STRATEGIES = {s.value: s for s in Strategy}


def _loaded_of(result: ProbeResult) -> tuple[str, ...]:
    """The models a result says are loaded (all of them when the server does not say)."""
    if not result.ready:
        return ()
    return result.models if result.loaded is None else result.loaded


def _why(
    key: str,
    chosen: str,
    why: str,
    reasons: Mapping[str, str],
    fallback: bool,
    alternatives: Sequence[str],
) -> str:
    if key == chosen:
        if fallback:
            return "chosen by fallback any-ready"
        return "chosen: " + reasons[key]
    if key in reasons:
        return f"also serves it ({reasons[key]}); failover #{alternatives.index(key) + 1}"
    return why
