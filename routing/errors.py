"""The exception tree of ``routing``.

::

    RoutingError
    ├── ConfigError              .issues: list[ConfigIssue] (file, line, column, json_path, message)
    ├── NoRouteError             .model, .provider, .candidates
    └── BackendError             .instance
        ├── BackendUnavailable   refused, DOWN, LOADING
        ├── BackendTimeout       no answer within the deadline
        ├── BackendProtocolError garbage, wrong shape
        └── BackendRejected      a 4xx: the caller's mistake, passed through, never retried

Low-level errors (aiohttp, json, OS) are always mapped into this tree with
``raise NewError(...) from exc`` so the cause is kept.  The CLI maps the tree
to exit codes: 2 for :class:`ConfigError` (and usage), 3 for
:class:`NoRouteError`, 4 for :class:`BackendError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BackendError",
    "BackendProtocolError",
    "BackendRejected",
    "BackendTimeout",
    "BackendUnavailable",
    "ConfigError",
    "ConfigIssue",
    "NoRouteError",
    "RoutingError",
]


class RoutingError(Exception):
    """Base of every error ``routing`` raises on purpose."""


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
        #: The message without the candidate listing (for displays that list them apart).
        self.headline = message
        super().__init__(message)


class BackendError(RoutingError):
    """A backend failed to answer properly; ``instance`` is ``provider:instance``."""

    def __init__(
        self, message: str, *, instance: str, status: int | None = None, body: Any = None
    ) -> None:
        self.instance = instance
        self.status = status
        self.body = body
        self.detail = message
        super().__init__(f"{instance}: {message}")


class BackendUnavailable(BackendError):
    """The backend refused the connection, is DOWN, or is still LOADING its model."""


class BackendTimeout(BackendError):
    """The backend did not answer within the deadline."""


class BackendProtocolError(BackendError):
    """The backend answered with garbage or a reply of the wrong shape."""


class BackendRejected(BackendError):
    """The backend answered 4xx: the request is at fault. ``status`` and ``body`` say how."""
