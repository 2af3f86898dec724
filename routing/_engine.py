"""The Router: live probes + compiled rules -> a :class:`~routing._decision.Decision`.

This module holds the router's state and lifecycle, its probes (cached, deduplicated, bounded
by one timeout), :meth:`Router.resolve`, and what requests report back (failures, successes,
load).  How the probed candidates are decided among is :mod:`routing._resolution`; the
request methods (``complete``, ``chat``, ``embed`` ...) are :mod:`routing._router_requests`;
both are bases of :class:`Router`.

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
from collections.abc import Callable, Hashable, Iterable, Mapping
from types import TracebackType
from typing import Any

import aiohttp

from routing._decision import Decision, State
from routing._health import Breaker, InstanceHealth, ProbeResult
from routing._metrics import Metrics
from routing._operations import Operation
from routing._probes import probe_instance
from routing._resolution import Resolution
from routing._router_requests import RouterRequests
from routing._rules import RuleSet
from routing._strategies import Strategy
from routing.adapters import get_adapter
from routing.config import Config, Instance, load_config
from routing.errors import BackendError, Reason, redact_text

__all__ = ["Router"]

logger = logging.getLogger("routing")

#: Decisions are remembered (``Router._fingerprint``) for at most this many candidates ...
_DECIDED_KEYS = 16
#: ... and this many states at once (then forgotten together).
_DECIDED_MAX = 1024
#: Strategies whose next decision differs from the last from the same state.
_TURNING = frozenset({Strategy.ROUND_ROBIN, Strategy.STICKY})

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


class Router(RouterRequests, Resolution):
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
        # Decisions made from the same state (see _fingerprint), with the results they hold.
        self._decided: dict[Hashable, tuple[tuple[ProbeResult, ...], Decision]] = {}
        self._unsupported_version = 0
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
        if not result.ready and key in self._unsupported:  # a restart may bring other
            del self._unsupported[key]  # flags (llama.cpp --embeddings)
            self._unsupported_version += 1
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
        seen = self._fingerprint(keys, results, provider, model, operation)
        if seen is not None:
            decided = self._decided.get(seen)
            if decided is not None:
                return decided[1]
        decision = self._decide(keys, results, provider, model, rule, how, session, operation)
        if seen is not None:
            if len(self._decided) >= _DECIDED_MAX:
                self._decided.clear()
            self._decided[seen] = (tuple(results[key] for key in keys), decision)
        return decision

    def _fingerprint(
        self,
        keys: tuple[str, ...],
        results: Mapping[str, ProbeResult],
        provider: str | None,
        model: str | None,
        operation: Operation,
    ) -> tuple[Hashable, ...] | None:
        """Everything a decision for these arguments is made of, or None when it cannot be
        remembered (many candidates, a cooldown that ends with time, a strategy that turns
        or hashes a session).

        The probe results, each candidate's in-flight count and what was answered
        not_supported (its version): a decision from the same ones is the same decision,
        its trace and reasons included, so it is made once.  Results are named by ``id``;
        the remembered entry holds them, so no other object can have those ids meanwhile.
        """
        if len(keys) > _DECIDED_KEYS or self._strategy(model, provider) in _TURNING:
            return None
        now, healths, busy = self.clock(), self._health, self._busy
        parts: list[Hashable] = [provider, model, operation, keys, self._unsupported_version]
        for key in keys:
            if healths[key].cool_until > now:
                return None
            parts.append(id(results[key]))
            parts.append(busy.get(key, 0))
        return tuple(parts)

    def report_unsupported(self, key: str, operation: Operation) -> None:
        """``key`` answered ``not_supported`` for ``operation``: skip it for that operation
        (no health penalty) until it is seen not READY or the config reloads."""
        if key in self._health:
            self._unsupported.setdefault(key, set()).add(operation)
            self._unsupported_version += 1

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


def _secrets(config: Config) -> tuple[str, ...]:
    """Every credential the router may send (keys and their header forms), longest first."""
    found: set[str] = set()
    for inst in config.instances.values():
        key = inst.api_key()
        if key and len(key) >= 4:
            found.update((key, f"Bearer {key}"))
    return tuple(sorted(found, key=len, reverse=True))


def _loaded_of(result: ProbeResult) -> tuple[str, ...]:
    """The models a result says are loaded (all of them when the server does not say)."""
    if not result.ready:
        return ()
    return result.models if result.loaded is None else result.loaded
