"""The gateway path of a case: the app of :mod:`routing.gateway` on port 0, driven over HTTP."""

from __future__ import annotations

from collections.abc import Mapping

from routing.conformance.cases import Case
from routing.conformance.driver import Outcome, Target

__all__ = ["run_gateway", "unavailable_reason"]


def unavailable_reason() -> str | None:
    """Why the gateway path cannot run (None when it can)."""
    try:
        import routing.gateway  # noqa: F401
    except ImportError:
        return "routing.gateway not available yet"
    return "gateway path not wired yet"


async def run_gateway(case: Case, targets: Mapping[str, Target]) -> Outcome:
    """Send the case's request through the gateway."""
    raise NotImplementedError
