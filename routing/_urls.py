"""Turning what users write for an address into one canonical base URL."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from routing.adapters import default_port

_BIND_ALL = {"0.0.0.0", "::", "[::]", ""}

#: Characters no host name or address holds (``$`` is a ``$VAR`` that was never expanded).
_NOT_IN_HOST = re.compile(r"""[\s"'<>\\^`{|}$,;]""")

CREDENTIALS_MESSAGE = (
    "the address holds '@', as in user:password@host: credentials never go in the config "
    "file; put the key in an environment variable and name that variable with api_key_env"
)


class AddressError(ValueError):
    """An address that cannot be turned into a URL."""


def normalise_url(raw: str, *, kind: str, echo: bool = True) -> str:
    """Return ``scheme://host[:port][/path]`` without a trailing slash.

    Accepts every form ``OLLAMA_HOST`` takes: ``host``, ``host:port``, ``0.0.0.0``,
    ``:11434``, with or without ``http://``.  A bind-all address (``0.0.0.0``) is
    where a server listens, not where to connect: it becomes ``127.0.0.1``.  Credentials
    (``user:pw@host``) are refused, never dropped.  ``echo=False`` keeps ``raw`` (a value
    from the environment) out of the messages.
    """
    shown = f" {raw!r}" if echo else ""
    text = raw.strip()
    if not text:
        raise AddressError("empty address")
    if "://" not in text:
        if text.count(":") > 1 and "[" not in text:
            text = f"[{text}]"  # a bare IPv6 address (OLLAMA_HOST=::1) has no port
        text = "http://" + text
    # Before anything that may echo the address: a password must not reach a log (an '@'
    # anywhere counts, as a password holding '/' moves it out of the netloc).
    if "@" in text:
        raise AddressError(CREDENTIALS_MESSAGE)
    if re.search(r"\s", text):
        raise AddressError(f"invalid address{shown}: an address has no spaces")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise AddressError(f"invalid address{shown}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise AddressError(
            f"unsupported scheme {parts.scheme!r}"
            f"{' in' + shown if echo else ''} (use http or https)"
        )
    if parts.query or parts.fragment:
        raise AddressError(f"address{shown} must not carry a query or fragment")
    host = parts.hostname or ""
    bad = _NOT_IN_HOST.search(host)
    if bad is not None:
        hint = " (write ${NAME} for an environment variable)" if bad.group() == "$" else ""
        raise AddressError(
            f"invalid address{shown}: {bad.group()!r} cannot be part of a host name{hint}"
        )
    if port == 0:
        raise AddressError(f"invalid address{shown}: port 0 is where nothing listens (use 1-65535)")
    if host in _BIND_ALL:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    if port is None and parts.scheme == "http":
        port = default_port(kind)  # the kind's own (its API style's module says), if any
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{netloc}{path}"


def is_local(url: str) -> bool:
    """True when ``url`` points at this machine or a private network (no API key needed)."""
    host = urlsplit(url).hostname or ""
    if host in ("localhost", "localhost.localdomain") or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local
