"""In-process counters the engine updates on its hot path.

Plain dict increments, no formatting, no locks (one event loop).  The gateway
renders them as Prometheus text; library users read them directly.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["LATENCY_BUCKETS", "Metrics"]

#: Upper bounds (seconds) of the request latency histogram.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)


@dataclass(slots=True)
class Metrics:
    """Counters keyed by label tuples."""

    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    latency_buckets: Counter[tuple[str, float]] = field(default_factory=Counter)
    latency_sum: dict[str, float] = field(default_factory=dict)
    latency_count: Counter[str] = field(default_factory=Counter)
    failovers: Counter[tuple[str, str]] = field(default_factory=Counter)
    wrong_model: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    probes: Counter[tuple[str, str]] = field(default_factory=Counter)

    def request(self, instance: str, model: str, outcome: str, seconds: float) -> None:
        """Count one finished request (outcome: ok, error class name …) and its latency."""
        self.requests[(instance, model, outcome)] += 1
        self.latency_sum[instance] = self.latency_sum.get(instance, 0.0) + seconds
        self.latency_count[instance] += 1
        index = bisect_left(LATENCY_BUCKETS, seconds)  # the first bound >= seconds
        if index < len(LATENCY_BUCKETS):
            self.latency_buckets[(instance, LATENCY_BUCKETS[index])] += 1

    def failover(self, failed: str, reason: str) -> None:
        """Count a request moved away from ``failed``."""
        self.failovers[(failed, reason)] += 1

    def wrong(self, instance: str, expected: str, got: str) -> None:
        """Count a reply naming another model than the one routed to."""
        self.wrong_model[(instance, expected, got)] += 1

    def probe(self, instance: str, state: str) -> None:
        """Count one probe result."""
        self.probes[(instance, state)] += 1
