"""The exception tree of ``routing``.

::

    RoutingError
    ├── ConfigError              .issues: list[ConfigIssue] (file, line, column, json_path, message)
    ├── NoRouteError             .model, .provider, .candidates
    ├── InvalidRequest           .param, .code: a request field of the wrong type or range
    └── BackendError             .instance .reason .retry_after .status .body
        ├── BackendUnavailable   refused, loading, overloaded, unauthorized, not_supported
        ├── BackendTimeout       timeout: no answer within the deadline
        ├── BackendProtocolError protocol (garbage, wrong shape), server_error (5xx)
        └── BackendRejected      rejected: a 4xx, the caller's mistake, passed through

Failures are data: every :class:`BackendError` carries a :class:`Reason`, set once where the
HTTP answer (or the low-level failure) is read.  Engine, failover, health, metrics and the
gateway decide on ``reason``, never on message text:

==============  ==================================================  ==========================
reason          what happened                                        what follows
==============  ==================================================  ==========================
refused         connection refused / reset before the reply          fail over; instance DOWN
timeout         no answer within the deadline                        fail over; instance DOWN
loading         llama.cpp 503 "Loading model"                        fail over; LOADING
overloaded      429 (``retry_after`` from ``Retry-After``)           cool down, fail over
unauthorized    401 / 403                                            MISCONFIGURED, 502
not_supported   501, or 404 for an endpoint the server lacks         skip for that operation
rejected        any other 4xx: the request's fault                   passed to the client
server_error    5xx                                                  fail over; probe confirms
protocol        garbage, wrong shape, cut inside the reply           fail over; UNHEALTHY
==============  ==================================================  ==========================

Low-level errors (aiohttp, json, OS) are always mapped into this tree with
``raise NewError(...) from exc`` so the cause is kept.  The CLI maps the tree
to exit codes: 2 for :class:`ConfigError` (and usage), 3 for
:class:`NoRouteError`, 4 for :class:`BackendError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "BackendError",
    "BackendProtocolError",
    "BackendRejected",
    "BackendTimeout",
    "BackendUnavailable",
    "ConfigError",
    "ConfigIssue",
    "InvalidRequest",
    "NoRouteError",
    "Reason",
    "RoutingError",
]


class Reason(StrEnum):
    """Why a backend failed: the closed set every component decides on."""

    REFUSED = "refused"
    TIMEOUT = "timeout"
    LOADING = "loading"
    OVERLOADED = "overloaded"
    UNAUTHORIZED = "unauthorized"
    NOT_SUPPORTED = "not_supported"
    REJECTED = "rejected"
    SERVER_ERROR = "server_error"
    PROTOCOL = "protocol"

    @property
    def fails_over(self) -> bool:
        """True when another instance serving the model may be tried (before the first byte)."""
        return self not in (Reason.REJECTED,)


class RoutingError(Exception):
    """Base of every error ``routing`` raises on purpose."""


class InvalidRequest(RoutingError):
    """A request field has the wrong type or range; nothing was sent to any backend.

    ``param`` is the field's path (``messages[2].content``, ``temperature``), ``code`` a
    short word for the problem as OpenAI spells it (``invalid_type``,
    ``missing_required_parameter``, ``decimal_above_max_value``, ...).  The gateway
    answers it 400 in the door's error shape.
    """

    def __init__(self, message: str, *, param: str, code: str = "invalid_value") -> None:
        self.param = param
        self.code = code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One located problem in a config file."""

    file: str
    line: int
    column: int
    json_path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.json_path}: {self.message}"


class ConfigError(RoutingError):
    """The config is invalid; ``issues`` lists every problem, best first."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues) or "invalid config")


class NoRouteError(RoutingError):
    """No READY candidate serves the request; ``candidates`` says who was asked and why not."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None,
        provider: str | None,
        candidates: Sequence[Any] = (),
    ) -> None:
        self.model = model
        self.provider = provider
        self.candidates: list[Any] = list(candidates)
        #: True when no candidate was READY at all (the gateway answers 503, not 404).
        self.unavailable = False
        #: True when the model is served, but by no instance that can do the operation
        #: asked for (the gateway answers 501 ``not_supported``).
        self.unsupported = False
        #: The message without the candidate listing (for displays that list them apart).
        self.headline = message
        super().__init__(message)


class BackendError(RoutingError):
    """A backend failed to answer properly; ``instance`` is ``provider:instance``.

    ``reason`` (a :class:`Reason`) says why, ``retry_after`` how many seconds the backend
    asked to be left alone (``Retry-After``, or None), ``status`` the HTTP status if any and
    ``body`` the parsed error body (already free of every secret the router sends).
    """

    default_reason: Reason = Reason.PROTOCOL

    def __init__(
        self,
        message: str,
        *,
        instance: str,
        status: int | None = None,
        body: Any = None,
        reason: Reason | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.instance = instance
        self.status = status
        self.body = body
        self.detail = message
        self.reason: Reason = reason if reason is not None else self.default_reason
        self.retry_after = retry_after
        super().__init__(f"{instance}: {message}")

    def redact(self, secrets: Sequence[str]) -> None:
        """Replace every occurrence of ``secrets`` in the message and body (in place)."""
        if not secrets:
            return
        self.detail = redact_text(self.detail, secrets)
        self.body = redact_value(self.body, secrets)
        self.args = (f"{self.instance}: {self.detail}",)


class BackendUnavailable(BackendError):
    """The backend cannot take the request now: refused, loading, overloaded, unauthorized,
    or it lacks the operation (``reason`` says which)."""

    default_reason = Reason.REFUSED


class BackendTimeout(BackendError):
    """The backend did not answer within the deadline."""

    default_reason = Reason.TIMEOUT


class BackendProtocolError(BackendError):
    """The backend answered with garbage, a reply of the wrong shape, or a 5xx."""

    default_reason = Reason.PROTOCOL


class BackendRejected(BackendError):
    """The backend answered 4xx: the request is at fault. ``status`` and ``body`` say how."""

    default_reason = Reason.REJECTED


#: What a secret is replaced by wherever upstream text is kept or shown.
REDACTED = "[redacted]"


def redact_text(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by :data:`REDACTED` (longest first)."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_value(value: Any, secrets: Sequence[str], depth: int = 0) -> Any:
    """A JSON-like value with every string redacted (bounded depth: deeper parts dropped)."""
    if isinstance(value, str):
        return redact_text(value, secrets)
    if depth > 32:
        return None
    if isinstance(value, dict):
        return {
            redact_text(str(k), secrets): redact_value(v, secrets, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_value(v, secrets, depth + 1) for v in value]
    return value
