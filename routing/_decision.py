"""A routing decision as data: where a request goes, and why.

Logging, ``routing explain`` and the gateway all read the same object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Candidate", "Decision", "State"]


class State(StrEnum):
    """Instance states (a ``str`` enum: they print and serialise as themselves).

    MISCONFIGURED: the upstream refused our credentials (401/403); not probed again until
    the config is reloaded, since only a new key can change the answer.
    """

    READY = "READY"
    LOADING = "LOADING"
    DOWN = "DOWN"
    UNHEALTHY = "UNHEALTHY"
    MISCONFIGURED = "MISCONFIGURED"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One instance that was considered: its state, its models, chosen or why not."""

    instance: str
    state: str
    models: tuple[str, ...]
    chosen: bool
    why: str
    inflight: int = 0
    loaded: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``candidates`` entries of ``routing explain --json``)."""
        return {
            "instance": self.instance,
            "state": self.state,
            "models": list(self.models),
            "chosen": self.chosen,
            "why": self.why,
            "inflight": self.inflight,
            "loaded": list(self.loaded),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a request goes.

    ``instance`` is ``provider:instance``; ``base_url`` is what that API style's official
    client takes; ``model`` is the id to send to the backend (an alias resolved);
    ``alternatives`` are the other READY instances serving the same model, in order,
    for failover; ``fallback_used`` is true only when ``fallback: any-ready`` sent the
    request to an instance that does not list the model; ``warnings`` are what response
    verification found (e.g. the reply named another model than the one routed to).
    """

    provider: str
    instance: str
    base_url: str
    api: str
    model: str | None
    reason: str
    trace: tuple[Candidate, ...] = ()
    rule: str | None = None
    requested_model: str | None = None
    fallback_used: bool = False
    alternatives: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = ()

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """Alias of ``trace``: every candidate considered."""
        return self.trace

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``routing explain --json`` prints)."""
        return {
            "provider": self.provider,
            "instance": self.instance,
            "base_url": self.base_url,
            "api": self.api,
            "model": self.model,
            "requested_model": self.requested_model,
            "reason": self.reason,
            "rule": self.rule,
            "fallback_used": self.fallback_used,
            "warnings": list(self.warnings),
            "candidates": [c.as_dict() for c in self.trace],
        }

    def explain(self) -> str:
        """Human-readable lines: the decision, then every candidate."""
        lines = [
            f"-> {self.instance} ({self.base_url}, api {self.api}) model {self.model}",
            f"   reason: {self.reason}",
        ]
        lines.extend(_candidate_lines(self.trace))
        return "\n".join(lines)


def _candidate_lines(trace: tuple[Candidate, ...]) -> list[str]:
    out = []
    for c in trace:
        mark = "*" if c.chosen else " "
        models = ", ".join(c.models) if c.models else "-"
        out.append(f" {mark} {c.instance:<32} {c.state:<9} [{models}] {c.why}")
    return out
