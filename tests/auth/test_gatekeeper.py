"""The Gatekeeper alone: constant-time identification against every key, the token bucket and
concurrency limits on an injected clock, and limit state across reloads."""

from __future__ import annotations

import hmac
from collections.abc import Callable

import pytest
from auth_support import Clock

import routing._auth as auth_module
from routing._auth import AuthSettings, ClientKey, Gatekeeper

ALICE = ClientKey("alice", "KA", "a" * 24, requests_per_minute=6)
BOB = ClientKey("bob", "KB", "b" * 24, max_concurrent=2)
CAROL = ClientKey("carol", "KC", "c" * 24)
AUTH = AuthSettings((ALICE, BOB, CAROL), "KADMIN", "z" * 24)


def test_identify_compares_against_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Identifying compares the digest with every key (hmac.compare_digest, no early exit)."""
    calls: list[tuple[bytes, bytes]] = []
    real: Callable[[bytes, bytes], bool] = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", counting)
    keeper = Gatekeeper()
    for key in (ALICE, CAROL):
        calls.clear()
        assert keeper.identify(AUTH, [key.secret]) is key
        assert len(calls) == 3 and all(len(a) == len(b) == 32 for a, b in calls)
    calls.clear()
    assert keeper.identify(AUTH, ["a" * 23]) is None
    assert len(calls) == 3


def test_identify_and_admin() -> None:
    """Either header may hold the key; admin and client keys never stand in for each other."""
    keeper = Gatekeeper()
    assert keeper.identify(AUTH, ["wrong", BOB.secret]) is BOB
    assert keeper.identify(AUTH, []) is None
    assert keeper.identify(AUTH, ["z" * 24]) is None
    assert keeper.is_admin(AUTH, ["z" * 24]) and keeper.is_admin(AUTH, ["x", "z" * 24])
    assert not keeper.is_admin(AUTH, [ALICE.secret]) and not keeper.is_admin(AUTH, [])
    assert keeper.is_admin(AuthSettings((ALICE,)), [])


def test_requests_per_minute_bucket() -> None:
    """6/min: six at once, then one every 10 s; Retry-After is the wait for the next one."""
    clock = Clock()
    keeper = Gatekeeper(clock)
    for _ in range(6):
        assert keeper.admit(ALICE) is None
        keeper.release(ALICE)
    refusal = keeper.admit(ALICE)
    assert refusal is not None and (refusal.status, refusal.code, refusal.retry_after) == (
        429,
        "rate_limit_exceeded",
        10,
    )
    clock.advance(7.5)
    refusal = keeper.admit(ALICE)
    assert refusal is not None and refusal.retry_after == 3
    clock.advance(2.5)
    assert keeper.admit(ALICE) is None
    keeper.release(ALICE)
    assert keeper.admit(ALICE) is not None
    clock.advance(3600)  # a long pause refills to the bucket's size, not beyond
    for _ in range(6):
        assert keeper.admit(ALICE) is None
        keeper.release(ALICE)
    assert keeper.admit(ALICE) is not None


def test_max_concurrent() -> None:
    """Past max_concurrent a request waits for a release; that refusal spends no rate token."""
    keeper = Gatekeeper(Clock())
    assert keeper.admit(BOB) is None and keeper.admit(BOB) is None
    refusal = keeper.admit(BOB)
    assert refusal is not None and (refusal.code, refusal.retry_after) == (
        "concurrency_limit_exceeded",
        1,
    )
    assert keeper.inflight("bob") == 2
    keeper.release(BOB)
    assert keeper.admit(BOB) is None
    both = ClientKey("dora", "KD", "d" * 24, requests_per_minute=2, max_concurrent=1)
    assert keeper.admit(both) is None
    assert keeper.admit(both) is not None  # concurrency: the bucket keeps its last request
    keeper.release(both)
    assert keeper.admit(both) is None
    keeper.release(both)
    assert keeper.admit(both) is not None  # now the bucket is empty
    assert keeper.inflight("dora") == 0


def test_reload_keeps_state_of_kept_keys_only() -> None:
    """A reload keeping alice keeps her bucket; one removing then re-adding her resets it."""
    clock = Clock()
    keeper = Gatekeeper(clock)
    keeper.identify(AUTH, [])
    for _ in range(6):
        assert keeper.admit(ALICE) is None
        keeper.release(ALICE)
    same = AuthSettings((ALICE, BOB), None, None)
    assert keeper.identify(same, [ALICE.secret]) is ALICE
    assert keeper.admit(ALICE) is not None
    keeper.identify(AuthSettings((BOB,)), [])
    readded = AuthSettings((ALICE,))
    assert keeper.identify(readded, [ALICE.secret]) is ALICE
    assert keeper.admit(ALICE) is None
