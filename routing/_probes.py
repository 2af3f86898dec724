"""Probing an instance: its API style's own probe, bounded, classified, never raising.

Which endpoints a probe asks and what "loaded" means belong to each API style's module
(:mod:`routing.adapters`); this module adds what is the same for all: a remote instance
whose key is missing is not asked, one total timeout bounds the probe, and every failure
becomes a :class:`ProbeResult` whose state says what went wrong (DOWN: refused or timed
out; MISCONFIGURED: credentials refused; LOADING: still loading its model; UNHEALTHY:
5xx, redirects, bad JSON, wrong shape).  No upstream text is kept in a probe's detail.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from routing._decision import State
from routing._health import ProbeResult
from routing.adapters import get_adapter
from routing.adapters._probe import ProbeFailed
from routing.config import Instance

__all__ = ["probe_instance"]


async def probe_instance(
    session: aiohttp.ClientSession,
    instance: Instance,
    now: Callable[[], float],
    *,
    load: bool = False,
) -> ProbeResult:
    """Probe one instance; never raises for what a server answers (cancellation aside).

    ``load``: also ask how busy the server is (for the load-aware strategies)."""
    if not instance.local and instance.api_key_env and instance.api_key() is None:
        return ProbeResult(
            State.UNHEALTHY,
            instance.models,
            detail=f"API key missing: set {instance.api_key_env}",
            at=now(),
        )
    # Only the total bounds a probe: with hundreds of probes starting at once, the event loop
    # itself may take longer than connect_timeout to get to a socket (seen at 1,000 instances).
    timeout = aiohttp.ClientTimeout(total=instance.probe_timeout)
    try:
        probed = await get_adapter(instance.api).probe(session, instance, timeout, load=load)
    except ProbeFailed as failed:
        return ProbeResult(failed.state, detail=failed.detail, at=now())
    models = probed.models or instance.models
    return ProbeResult(
        State.READY,
        tuple(models),
        probed.loaded,
        at=now(),
        loading=probed.loading,
        busy=probed.busy,
        slots=probed.slots,
    )
