"""routing: decide which local or remote LLM backend serves a chat request."""

from routing.errors import (
    BackendError,
    BackendProtocolError,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    ConfigError,
    ConfigIssue,
    NoRouteError,
    RoutingError,
)

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
