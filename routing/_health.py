"""Instance health: the last probe result, the circuit breaker, and the model index.

Everything here is synchronous and takes ``now`` from an injected clock, so the
breaker's backoff is tested without sleeping.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field

from routing._decision import State
from routing.adapters import get_adapter
from routing.config import BreakerSettings, Instance

__all__ = ["Breaker", "InstanceHealth", "ProbeResult", "served_names"]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe learnt: state, the models served (live list), why.

    ``loaded`` lists the models in memory (None: the server does not say, so every listed
    model counts as loaded), ``loading`` those being loaded now; ``busy`` and ``slots``
    are what the server reports of its own load (llama.cpp ``/slots``), None if nothing.
    """

    state: str
    models: tuple[str, ...] = ()
    loaded: tuple[str, ...] | None = None
    detail: str = ""
    at: float = 0.0
    loading: tuple[str, ...] = ()
    busy: int | None = None
    slots: int | None = None

    @property
    def ready(self) -> bool:
        """True when the instance can take requests."""
        return self.state == State.READY


@dataclass(slots=True)
class Breaker:
    """Opens after ``failures`` consecutive failures; backoff doubles up to ``max_backoff``.

    While open, no probe is sent; once ``open_until`` has passed, exactly one
    half-open probe is allowed, and its result closes or reopens the breaker.
    """

    settings: BreakerSettings
    failures: int = 0
    open_until: float | None = None
    backoff: float = 0.0
    half_open: bool = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        if self.open_until is None:
            return "closed"
        return "half-open" if self.half_open else "open"

    def allows_probe(self, now: float) -> bool:
        """True when a probe may go out now (closed, or open and due for its half-open probe)."""
        if self.open_until is None:
            return True
        if self.half_open or now < self.open_until:
            return False
        self.half_open = True
        return True

    def success(self) -> None:
        """A probe or request succeeded: close."""
        self.failures = 0
        self.open_until = None
        self.backoff = 0.0
        self.half_open = False

    def failure(self, now: float) -> None:
        """A probe or request failed: count it; open (or reopen, with doubled backoff).

        The breaker opens once per failure streak: failures reported while it is already
        open (concurrent requests failing together) are counted but neither reopen it nor
        double its backoff; only the half-open probe's failure does.
        """
        self.failures += 1
        if self.open_until is not None and not self.half_open:
            return
        if self.half_open or self.failures >= self.settings.failures:
            self.backoff = (
                self.settings.backoff
                if self.backoff == 0.0
                else min(self.backoff * 2, self.settings.max_backoff)
            )
            self.open_until = now + self.backoff
            self.half_open = False


def served_names(instance: Instance, models: Iterable[str]) -> dict[str, str]:
    """Every name under which ``instance`` serves a model -> the id to send it.

    Exact ids first; then a ``:latest`` tag left out, or the style's implicit tag added
    (Ollama's ``llama3`` is ``llama3:latest``); then the file name of a
    llama.cpp model path; then the instance's configured aliases.
    """
    names: dict[str, str] = {}
    ids = list(models)
    tag = get_adapter(instance.api).implicit_tag
    for model_id in ids:
        names.setdefault(model_id, model_id)
    for model_id in ids:
        if model_id.endswith(":latest"):  # Ollama's names, wherever they are listed
            names.setdefault(model_id[: -len(":latest")], model_id)
        elif tag and ":" not in model_id:
            names.setdefault(model_id + tag, model_id)
        if "/" in model_id:
            names.setdefault(posixpath.basename(model_id), model_id)
    for alias, target in instance.aliases.items():
        if target in names:
            names.setdefault(alias, names[target])
    return names


@dataclass(slots=True)
class InstanceHealth:
    """Everything the engine knows about one instance right now.

    ``names`` is the model index of the last READY probe, kept when the instance goes
    DOWN, so a model whose only server went away is "down" (503), not "unknown" (404),
    until a probe says otherwise.  ``cool_until`` is the end of a 429 cooldown.
    """

    instance: Instance
    breaker: Breaker
    result: ProbeResult | None = None
    names: dict[str, str] = field(default_factory=dict)
    known_models: tuple[str, ...] = ()
    cool_until: float = 0.0

    @property
    def state(self) -> str:
        """The state of the last probe or request (DOWN when never probed)."""
        return self.result.state if self.result is not None else State.DOWN

    @property
    def misconfigured(self) -> bool:
        """True once the upstream refused our credentials (sticky until reload)."""
        return self.result is not None and self.result.state == State.MISCONFIGURED

    def record(self, result: ProbeResult, *, count: bool = True) -> None:
        """Store a probe result; update the breaker (``count``) and the served names."""
        self.result = result
        if result.ready:
            self.breaker.success()
            self.names = served_names(self.instance, result.models)
            self.known_models = result.models
        elif count:
            self.breaker.failure(result.at)

    def cooling(self, now: float) -> float:
        """Seconds left of a 429 cooldown (0 when none)."""
        return max(self.cool_until - now, 0.0)

    def age(self, now: float) -> float | None:
        """Seconds since the last result, or None."""
        return None if self.result is None else now - self.result.at
