"""Choosing among the candidates that serve a model: warm first, then the strategy.

Every strategy orders the READY candidates that serve the requested model; failover walks
that order.  Two rules come before any strategy:

1. **Warm beats cold.**  A candidate where the model is *loaded* comes before one where it
   is *loading*, which comes before one where it is only *loadable* (llama.cpp router mode
   ``unloaded``, an Ollama model not running).  Routing never makes a server
   load a model while another candidate has it loaded.
2. **Saturated last.**  A candidate whose slots are all busy *and* has requests already
   waiting for one (more in flight than slots) comes after the ones with room, within its
   warmth tier.  Every slot busy is not enough: a llama.cpp server queues, and waiting for
   one slot costs less than recomputing a long prompt on a server that has not cached it
   (measured in benchmarks/bench_fleet.py: with one slot per server, spilling on "every
   slot busy" moved sticky conversations on every collision and cost a fifth of the cache).

Within a tier:

``first``
    declaration order.
``round-robin``
    rotate over the tier, one step per request.
``least-busy``
    fewest requests in flight: the router's own count plus what the server last reported
    busy beyond it (llama.cpp ``/slots``); ties in declaration order.
``sticky``
    rendezvous (highest-random-weight) hashing of the session key over the candidates'
    names: every gateway replica picks the same instance for a session with no shared
    state, and when it is down or saturated the session spills to the next in its own
    hash order (so only the sessions of a lost instance move).

Pure functions of their inputs: tested without servers or clocks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

__all__ = ["Candidacy", "Strategy", "Warmth", "order", "session_key", "sticky_weight"]


class Strategy(StrEnum):
    """How to choose among equally warm candidates."""

    FIRST = "first"
    ROUND_ROBIN = "round-robin"
    LEAST_BUSY = "least-busy"
    STICKY = "sticky"


class Warmth(StrEnum):
    """Where the requested model stands on one instance."""

    LOADED = "loaded"
    LOADING = "loading"
    LOADABLE = "loadable"


_TIER = {Warmth.LOADED: 0, Warmth.LOADING: 1, Warmth.LOADABLE: 2}


class Candidacy(NamedTuple):
    """One READY candidate that serves the model: what the strategies weigh (a named
    tuple: one is made per candidate on every resolve, and tuples are made fastest)."""

    key: str
    warmth: Warmth
    inflight: int = 0
    reported_busy: int | None = None
    slots: int | None = None

    @property
    def load(self) -> int:
        """Requests busy on it: ours in flight, or what the server reports if more."""
        if self.reported_busy is None:
            return self.inflight
        return max(self.inflight, self.reported_busy)

    @property
    def saturated(self) -> bool:
        """True when every slot is taken and requests already wait for one (more in flight
        than slots; unknown slot count: never)."""
        return self.slots is not None and self.slots > 0 and self.load > self.slots


_MASK = (1 << 64) - 1


def _hash64(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


_key_hash = lru_cache(maxsize=8192)(_hash64)  # instance names: few, asked on every resolve


def _mix(x: int) -> int:
    """splitmix64's finaliser: a bijection of 64-bit ints in which every input bit moves
    every output bit (so a session's order over instances looks random, and is stable)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def sticky_weight(session: str, key: str) -> int:
    """The rendezvous weight of instance ``key`` for ``session`` (stable across processes):
    the session's hash and the instance's (cached) hash, combined and mixed; one hash per
    request, however many candidates."""
    return _mix(_hash64(session) ^ _key_hash(key))


def order(
    candidates: Sequence[Candidacy],
    strategy: Strategy,
    *,
    rotation: int = 0,
    session: str | None = None,
) -> tuple[list[Candidacy], dict[str, str]]:
    """The candidates in the order to try them, and a reason for each (for the trace).

    ``rotation`` is the round-robin counter of this candidate set; ``session`` the sticky
    key (sticky without one falls back to least-busy and says so).
    """
    reasons: dict[str, str] = {}
    if strategy is Strategy.STICKY and not session:
        strategy = Strategy.LEAST_BUSY
        reasons["*"] = "sticky without a session key: least-busy"
    if strategy is Strategy.FIRST and all(
        c.warmth is Warmth.LOADED and not c.saturated for c in candidates
    ):
        as_declared = list(candidates)  # the common case: nothing to sort
        for rank, c in enumerate(as_declared):
            reasons[c.key] = _reason(c, rank, strategy, as_declared[0])
        return as_declared, reasons
    tiers: dict[tuple[int, bool], list[Candidacy]] = {}
    for c in candidates:
        tiers.setdefault((_TIER[c.warmth], c.saturated), []).append(c)
    ordered: list[Candidacy] = []
    for tier_key in sorted(tiers):
        tier = tiers[tier_key]
        if strategy is Strategy.ROUND_ROBIN and tier:
            shift = rotation % len(tier)
            tier = tier[shift:] + tier[:shift]
        elif strategy is Strategy.LEAST_BUSY:
            tier = sorted(tier, key=lambda c: c.load)  # stable: declaration order on ties
        elif strategy is Strategy.STICKY:
            assert session is not None
            seed = _hash64(session)
            tier = sorted(tier, key=lambda c: _mix(seed ^ _key_hash(c.key)), reverse=True)
        ordered.extend(tier)
    for rank, c in enumerate(ordered):
        reasons[c.key] = _reason(c, rank, strategy, ordered[0])
    return ordered, reasons


_WARMTH_TEXT = {
    Warmth.LOADED: "loaded",
    Warmth.LOADING: "cold: loading",
    Warmth.LOADABLE: "cold: must load",
}
_LEADER_TEXT = {
    Strategy.FIRST: "; first in declaration order",
    Strategy.ROUND_ROBIN: "; its turn (round-robin)",
    Strategy.LEAST_BUSY: "; least busy",
    Strategy.STICKY: "; session's instance (sticky)",
}


def _reason(c: Candidacy, rank: int, strategy: Strategy, best: Candidacy) -> str:
    """One candidate's place in the order, for the trace (on every resolve: kept cheap)."""
    text = f"{_WARMTH_TEXT[c.warmth]}; {c.inflight} in flight"
    if c.reported_busy is not None:
        text += f", server reports {c.reported_busy} busy"
        if c.slots is not None:
            text += f" of {c.slots} slots"
        if c.saturated:
            text += "; saturated"
    if rank == 0:
        return text + _LEADER_TEXT[strategy]
    if best.warmth is not c.warmth and _TIER[best.warmth] < _TIER[c.warmth]:
        text += f"; {best.key} has the model {best.warmth.value}"
    return text


def session_key(request: Mapping[str, object], header: str | None = None) -> str | None:
    """The sticky session key of an OpenAI-shaped request.

    ``X-Session-ID`` (``header``) first, then the request's ``user``, then a hash of the
    system prompt and the first user message (a conversation keeps both as it grows).
    None when there is nothing to key on.
    """
    if header:
        return f"h:{header}"
    user = request.get("user")
    if isinstance(user, str) and user:
        return f"u:{user}"
    messages = request.get("messages")
    if not isinstance(messages, list):
        return None
    system = first_user = None
    for m in messages:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role in ("system", "developer") and system is None:
            system = _text(m.get("content"))
        elif role == "user" and first_user is None:
            first_user = _text(m.get("content"))
            break
    if system is None and first_user is None:
        return None
    text = f"{system or ''}\x00{first_user or ''}"
    return "c:" + hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""
