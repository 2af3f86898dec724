"""Deciding among probed candidates: the resolution half of :class:`routing.Router`.

:class:`Resolution` is a base of the Router and holds no state of its own: it reads the
router's (declared below, set by ``Router.__init__``).  ``_candidates`` says which instances
a request may go to (steps 1 and 2 of the contract in :mod:`routing._engine`); once they are
probed, ``_decide`` picks one and its alternatives, or raises the error that lists every
candidate (steps 3 to 5).  ``_decide`` runs for every request: its per-candidate work stays
inlined in one loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from routing._decision import Candidate, Decision, State
from routing._health import InstanceHealth, ProbeResult
from routing._operations import Operation
from routing._rules import RuleSet
from routing._strategies import Candidacy, Strategy, Warmth, order
from routing.config import Config
from routing.errors import BackendUnavailable, NoRouteError, Reason

__all__ = ["Resolution"]


class Resolution:
    """Which instances a request may go to, and the decision among them (a base of
    :class:`routing.Router`, not used alone)."""

    config: Config
    clock: Callable[[], float]
    rules: RuleSet
    _health: dict[str, InstanceHealth]
    _operations: dict[str, frozenset[Operation]]
    _unsupported: dict[str, set[Operation]]
    _busy: dict[str, int]
    _rotation: dict[tuple[str, ...], int]  # round-robin position per candidate ring

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

    def _cannot(self, key: str, operation: Operation) -> str:
        """Why ``key`` cannot do ``operation`` ("" when it can)."""
        if operation not in self._operations[key]:
            return f"cannot do {operation.noun} (API style {self.config.instances[key].api})"
        unsupported = self._unsupported.get(key)
        if unsupported and operation in unsupported:
            return f"cannot do {operation.noun} (not_supported)"
        return ""

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


_STRATEGIES = {s.value: s for s in Strategy}


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
