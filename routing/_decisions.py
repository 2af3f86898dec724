"""The latest routing decisions of a gateway, for the dashboard: a bounded ring, newest first.

The gateway adds one entry per answered request that was routed (the decision of the
instance that answered, with its trace); the oldest falls out past ``size``.  Entries hold
names, states and reasons only: no URL, no key, no request or reply content.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from routing._decision import Decision

__all__ = ["DecisionLog", "DecisionRecord"]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One answered request: when, which door, the outcome, and the decision with its trace."""

    at: float
    method: str
    path: str
    status: int
    key: str | None
    latency_ms: float
    failovers: int
    decision: Decision

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``/ui/data`` lists under ``decisions``)."""
        d = self.decision
        return {
            "at": round(self.at, 3),
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "key": self.key,
            "latency_ms": round(self.latency_ms, 1),
            "failovers": self.failovers,
            "instance": d.instance,
            "model": d.model,
            "requested_model": d.requested_model,
            "reason": d.reason,
            "rule": d.rule,
            "fallback_used": d.fallback_used,
            "warnings": list(d.warnings),
            "candidates": [c.as_dict() for c in d.trace],
        }


class DecisionLog:
    """The last ``size`` decisions; ``total`` counts every one ever added."""

    def __init__(self, size: int = 50) -> None:
        # Plain tuples (a DecisionRecord's fields): one is added per request, records are
        # made only when the dashboard asks.
        self._ring: deque[tuple[Any, ...]] = deque(maxlen=size)
        self.total = 0

    def add(
        self,
        decision: Decision,
        *,
        method: str,
        path: str,
        status: int,
        key: str | None,
        latency_ms: float,
        failovers: int,
        at: float | None = None,
    ) -> None:
        """Remember one answered request (``at``: wall-clock seconds, default now)."""
        when = time.time() if at is None else at
        self._ring.append((when, method, path, status, key, latency_ms, failovers, decision))
        self.total += 1

    def latest(self) -> list[dict[str, Any]]:
        """Every remembered decision as data, newest first."""
        return [DecisionRecord(*fields).as_dict() for fields in reversed(self._ring)]

    def __len__(self) -> int:
        return len(self._ring)
