"""Strategies as pure functions: warm before cold, saturated last, then the strategy's order."""

from __future__ import annotations

from collections import Counter

import pytest

from routing._strategies import Candidacy, Strategy, Warmth, order, session_key, sticky_weight

A, B, C = "llamacpp:a", "llamacpp:b", "llamacpp:c"


def _keys(candidates: list[Candidacy]) -> list[str]:
    return [c.key for c in candidates]


@pytest.mark.parametrize("strategy", list(Strategy))
def test_warm_beats_cold_in_every_strategy(strategy: Strategy) -> None:
    """Whatever the strategy, loaded comes before loading before loadable."""
    cands = [
        Candidacy(A, Warmth.LOADABLE),
        Candidacy(B, Warmth.LOADING),
        Candidacy(C, Warmth.LOADED, inflight=50),
    ]
    for rotation in range(3):
        ordered, reasons = order(cands, strategy, rotation=rotation, session="s")
        assert _keys(ordered) == [C, B, A]
    assert reasons[A].startswith("cold: must load") and f"{C} has the model loaded" in reasons[A]
    assert reasons[B].startswith("cold: loading")


def test_first_keeps_declaration_order() -> None:
    """first: the declaration order among equally warm candidates."""
    cands = [Candidacy(A, Warmth.LOADED, 9), Candidacy(B, Warmth.LOADED, 0)]
    ordered, reasons = order(cands, Strategy.FIRST)
    assert _keys(ordered) == [A, B] and "first in declaration order" in reasons[A]


def test_round_robin_rotates_evenly() -> None:
    """round-robin: each candidate leads once every len(candidates) requests."""
    cands = [Candidacy(k, Warmth.LOADED) for k in (A, B, C)]
    leaders = Counter(order(cands, Strategy.ROUND_ROBIN, rotation=r)[0][0].key for r in range(30))
    assert leaders == {A: 10, B: 10, C: 10}


def test_least_busy_uses_own_and_reported_load() -> None:
    """least-busy: fewest in flight, where the server's report counts when it is higher."""
    cands = [
        Candidacy(A, Warmth.LOADED, inflight=2),
        Candidacy(B, Warmth.LOADED, inflight=1),
        Candidacy(C, Warmth.LOADED, inflight=0, reported_busy=3, slots=4),
    ]
    ordered, reasons = order(cands, Strategy.LEAST_BUSY)
    assert _keys(ordered) == [B, A, C]
    assert "least busy" in reasons[B] and "server reports 3 busy of 4 slots" in reasons[C]


def test_saturated_goes_last_within_its_tier() -> None:
    """A server with every slot busy and a request waiting comes after those with room
    (warm tier first)."""
    cands = [
        Candidacy(A, Warmth.LOADED, inflight=2, reported_busy=1, slots=1),
        Candidacy(B, Warmth.LOADED, inflight=5),
        Candidacy(C, Warmth.LOADABLE),
    ]
    ordered, reasons = order(cands, Strategy.FIRST)
    assert _keys(ordered) == [B, A, C] and "saturated" in reasons[A]


def test_sticky_is_stable_and_spreads() -> None:
    """sticky: a session always gets the same instance; sessions spread over all of them."""
    cands = [Candidacy(k, Warmth.LOADED) for k in (A, B, C)]
    picks = {f"s{i}": order(cands, Strategy.STICKY, session=f"s{i}")[0][0].key for i in range(300)}
    again = {s: order(list(reversed(cands)), Strategy.STICKY, session=s)[0][0].key for s in picks}
    assert picks == again, "declaration order does not matter: replicas agree"
    spread = Counter(picks.values())
    assert set(spread) == {A, B, C} and min(spread.values()) > 60


def test_sticky_spill_moves_only_the_lost_instances_sessions() -> None:
    """Removing an instance moves only its sessions, each to its next in hash order."""
    three = [Candidacy(k, Warmth.LOADED) for k in (A, B, C)]
    two = [c for c in three if c.key != B]
    for i in range(200):
        s = f"conv-{i}"
        full = _keys(order(three, Strategy.STICKY, session=s)[0])
        without_b = _keys(order(two, Strategy.STICKY, session=s)[0])
        assert without_b == [k for k in full if k != B]


def test_sticky_spills_when_saturated() -> None:
    """The session's instance, saturated, goes after the others (it comes back when free)."""
    s = "conv"
    weights = sorted((A, B), key=lambda k: sticky_weight(s, k), reverse=True)
    top, other = weights
    cands = [
        Candidacy(top, Warmth.LOADED, inflight=3, reported_busy=2, slots=2),
        Candidacy(other, Warmth.LOADED),
    ]
    assert _keys(order(cands, Strategy.STICKY, session=s)[0]) == [other, top]


def test_sticky_without_a_key_is_least_busy() -> None:
    """sticky with no session key falls back to least-busy and says so."""
    cands = [Candidacy(A, Warmth.LOADED, 3), Candidacy(B, Warmth.LOADED, 1)]
    ordered, reasons = order(cands, Strategy.STICKY, session=None)
    assert _keys(ordered) == [B, A] and "without a session key" in reasons["*"]


def test_session_key_precedence() -> None:
    """X-Session-ID, then user, then the system prompt and first user message."""
    msgs = [
        {"role": "system", "content": "be terse"},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "more"},
    ]
    assert session_key({"messages": msgs, "user": "u1"}, "h1") == "h:h1"
    assert session_key({"messages": msgs, "user": "u1"}) == "u:u1"
    turn1 = session_key({"messages": msgs[:2]})
    assert turn1 is not None and turn1 == session_key({"messages": msgs})
    assert turn1 != session_key({"messages": [msgs[0], {"role": "user", "content": "other"}]})
    parts = [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert session_key({"messages": parts}) == session_key(
        {"messages": [{"role": "user", "content": "hello"}]}
    )
    assert session_key({"messages": []}) is None and session_key({}) is None
