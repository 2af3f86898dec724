"""Who may use the gateway: client keys with model scopes and limits (``gateway.auth``).

Config side (used by :mod:`routing.config`): :class:`ClientKey` and :class:`AuthSettings`
as frozen data, :func:`auth_issues` (the located problems the schema cannot see: a
``key_env`` naming an unset variable, a key too short to be a secret, two keys alike) and
:func:`build_auth`.  The keys themselves are read from the environment once, at load; they
are kept out of every ``repr`` and never written anywhere.

Run-time side (used by the gateway): :class:`Gatekeeper` identifies a key by comparing a
SHA-256 digest of what the client sent with the digest of *every* configured key with
:func:`hmac.compare_digest` (no early exit: the time taken says nothing about which key, or
how much of one, matched), applies ``requests_per_minute`` (a token bucket refilled
continuously: ``rpm`` requests at once, then one every ``60/rpm`` s) and ``max_concurrent``,
and counts each key's requests and tokens.  Time comes from an injected clock.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from routing._yaml import MarkedDocument
from routing.errors import ConfigIssue

__all__ = [
    "MIN_KEY_LENGTH",
    "AuthSettings",
    "ClientKey",
    "Gatekeeper",
    "KeyUsage",
    "Refusal",
    "auth_issues",
    "build_auth",
    "is_loopback",
]

#: Shortest key accepted: anything shorter can be guessed.
MIN_KEY_LENGTH = 16


@dataclass(frozen=True, slots=True)
class ClientKey:
    """One key clients present (``gateway.auth.keys[]``); ``secret`` never shows in a repr."""

    name: str
    key_env: str
    secret: str = field(repr=False)
    models: tuple[str, ...] = ()
    requests_per_minute: int | None = None
    max_concurrent: int | None = None

    def allows(self, model: object) -> bool:
        """True when this key may use ``model`` (every model when ``models`` is empty)."""
        if not self.models:
            return True
        return isinstance(model, str) and any(fnmatchcase(model, g) for g in self.models)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """``gateway.auth``: the client keys, and the admin key guarding /status, /metrics, /ui."""

    keys: tuple[ClientKey, ...]
    admin_key_env: str | None = None
    admin_secret: str | None = field(default=None, repr=False)


def _key_problem(env: str, value: str | None) -> str | None:
    if not value:
        return f"environment variable {env} is not set (or empty); put the key in it"
    if len(value) < MIN_KEY_LENGTH:
        return (
            f"the key in {env} has {len(value)} characters; use at least "
            f"{MIN_KEY_LENGTH} (e.g. `openssl rand -hex 24`)"
        )
    if not all(33 <= ord(ch) < 127 for ch in value):
        return (
            f"the key in {env} must be printable ASCII without spaces "
            "(it travels in an HTTP header)"
        )
    return None


def auth_issues(doc: MarkedDocument, environ: Mapping[str, str]) -> Iterator[ConfigIssue]:
    """Every problem of a schema-valid ``gateway.auth`` that needs the environment."""
    auth = (doc.data.get("gateway") or {}).get("auth")
    if auth is None:
        return
    base = ("gateway", "auth")
    names: dict[str, int] = {}
    owners: dict[str, str] = {}
    for index, spec in enumerate(auth["keys"]):
        path = (*base, "keys", index)
        name, env = spec["name"], spec["key_env"]
        if name in names:
            yield doc.issue(
                (*path, "name"),
                f"key name {name!r} is already used by "
                f"gateway.auth.keys[{names[name]}]; names tell keys apart in "
                "logs and metrics",
            )
        names.setdefault(name, index)
        value = environ.get(env)
        problem = _key_problem(env, value)
        if problem:
            yield doc.issue((*path, "key_env"), problem)
        elif value is not None and value in owners:
            yield doc.issue(
                (*path, "key_env"),
                f"{name!r} has the same key as {owners[value]!r}"
                f" ({env}); every holder needs a key of their own",
            )
        elif value is not None:
            owners[value] = name
    admin_env = auth.get("admin_key_env")
    if admin_env is not None:
        value = environ.get(admin_env)
        problem = _key_problem(admin_env, value)
        if problem:
            yield doc.issue((*base, "admin_key_env"), problem)
        elif value is not None and value in owners:
            yield doc.issue(
                (*base, "admin_key_env"),
                f"the admin key ({admin_env}) is also "
                f"the key of {owners[value]!r}; the admin key must be its own",
            )


def build_auth(spec: Mapping[str, Any] | None, environ: Mapping[str, str]) -> AuthSettings | None:
    """``gateway.auth`` as data (call after :func:`auth_issues` found nothing)."""
    if spec is None:
        return None
    keys = tuple(
        ClientKey(
            name=str(k["name"]),
            key_env=str(k["key_env"]),
            secret=environ[k["key_env"]],
            models=tuple(k.get("models", ())),
            requests_per_minute=_optional_int(k.get("requests_per_minute")),
            max_concurrent=_optional_int(k.get("max_concurrent")),
        )
        for k in spec["keys"]
    )
    admin_env = spec.get("admin_key_env")
    return AuthSettings(keys, admin_env, None if admin_env is None else environ[admin_env])


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: HTTP ``status``, error ``type`` and ``code``, a message,
    and ``retry_after`` seconds for a 429."""

    status: int
    type: str
    code: str
    message: str
    retry_after: int | None = None


@dataclass(slots=True)
class KeyUsage:
    """Per-key counters: responses by ``(key, status)``, prompt and completion tokens."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    prompt_tokens: Counter[str] = field(default_factory=Counter)
    completion_tokens: Counter[str] = field(default_factory=Counter)

    def count(self, name: str, status: int, prompt: int = 0, completion: int = 0) -> None:
        """Count one finished request of key ``name`` and the tokens its answer used."""
        self.requests[(name, status)] += 1
        if prompt:
            self.prompt_tokens[name] += prompt
        if completion:
            self.completion_tokens[name] += completion


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


class Gatekeeper:
    """Identifies keys in constant time, applies their limits, counts their use.

    One per gateway; it follows reloads (it is given the current :class:`AuthSettings` on
    every call): limit state is kept per key *name*, so a reload that keeps a key keeps
    its bucket and in-flight count, and a key removed by a reload is refused at once.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.usage = KeyUsage()
        self._seen: AuthSettings | None = None
        self._table: tuple[tuple[bytes, ClientKey], ...] = ()
        self._admin: bytes | None = None
        self._buckets: dict[str, _Bucket] = {}
        self._inflight: Counter[str] = Counter()

    def _compile(self, auth: AuthSettings) -> None:
        if auth is not self._seen:
            self._table = tuple((_digest(k.secret), k) for k in auth.keys)
            self._admin = None if auth.admin_secret is None else _digest(auth.admin_secret)
            self._seen = auth
            names = {k.name for k in auth.keys}
            self._buckets = {n: b for n, b in self._buckets.items() if n in names}

    def identify(self, auth: AuthSettings, presented: Iterable[str]) -> ClientKey | None:
        """The client key among ``presented`` tokens, or None; every key is compared."""
        self._compile(auth)
        found: ClientKey | None = None
        for token in presented:
            digest = _digest(token)
            for expected, key in self._table:
                if hmac.compare_digest(digest, expected):
                    found = key
        return found

    def is_admin(self, auth: AuthSettings, presented: Iterable[str]) -> bool:
        """True when one of ``presented`` is the admin key (always True without one)."""
        self._compile(auth)
        if self._admin is None:
            return True
        ok = False
        for token in presented:
            ok |= hmac.compare_digest(_digest(token), self._admin)
        return ok

    def admit(self, key: ClientKey) -> Refusal | None:
        """Take one request and one concurrency slot for ``key``, or say why not.

        Every admitted request must be followed by :meth:`release`.
        """
        rpm, bucket = key.requests_per_minute, None
        if rpm is not None:
            now = self.clock()
            bucket = self._buckets.get(key.name) or _Bucket(float(rpm), now)
            bucket.tokens = min(float(rpm), bucket.tokens + (now - bucket.at) * rpm / 60.0)
            bucket.at = now
            self._buckets[key.name] = bucket
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) * 60.0 / rpm
                return Refusal(
                    429,
                    "rate_limit_error",
                    "rate_limit_exceeded",
                    f"key {key.name!r} is over its limit of {rpm} requests per minute",
                    max(1, math.ceil(wait)),
                )
        limit = key.max_concurrent
        if limit is not None and self._inflight[key.name] >= limit:
            return Refusal(
                429,
                "rate_limit_error",
                "concurrency_limit_exceeded",
                f"key {key.name!r} already has {limit} requests in flight (its max_concurrent)",
                1,
            )
        if bucket is not None:
            bucket.tokens -= 1.0
        self._inflight[key.name] += 1
        return None

    def release(self, key: ClientKey) -> None:
        """Give back the concurrency slot of a request :meth:`admit` let in."""
        left = self._inflight[key.name] - 1
        if left > 0:
            self._inflight[key.name] = left
        else:
            del self._inflight[key.name]

    def inflight(self, name: str) -> int:
        """Requests of key ``name`` in flight now."""
        return self._inflight[name]


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to any address
