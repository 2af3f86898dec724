"""HTTP plumbing shared by the adapters: one request helper, failure classification, readers.

Every failure is classified once, here, where the answer is read: the error carries a
:class:`~routing.errors.Reason` (and ``retry_after``) that the rest of the code decides on.

=========================================================  =====================  ============
what happened                                              raised                 reason
=========================================================  =====================  ============
connection refused / reset / closed before the reply       BackendUnavailable     refused
connect, read or total timeout                             BackendTimeout         timeout
503 with llama.cpp's ``unavailable_error`` (loading)       BackendUnavailable     loading
429, 529, any other 503                                   BackendUnavailable     overloaded
401, 403                                                   BackendUnavailable     unauthorized
501; 404 with no JSON error or llama.cpp's not_found_error BackendUnavailable     not_supported
any other 4xx                                              BackendRejected        rejected
any other 5xx                                              BackendProtocolError   server_error
3xx (redirects are never followed)                         BackendProtocolError   protocol
not JSON, wrong shape, connection cut inside the reply     BackendProtocolError   protocol
an error object in a 200 reply or inside a stream          BackendProtocolError   server_error
=========================================================  =====================  ============

Error bodies are kept (parsed) for the caller with every credential this request sent
replaced, except for ``unauthorized``: the body of an auth failure is never kept at all.
"""

from __future__ import annotations

import functools
import io
import json
import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from routing import _json
from routing.errors import (
    BackendError,
    BackendProtocolError,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    Reason,
    redact_text,
    redact_value,
)

if TYPE_CHECKING:
    from routing.config import Instance

__all__ = [
    "WireBody",
    "WireChunk",
    "bearer_headers",
    "classify_status",
    "client_timeout",
    "expect_object",
    "iter_ndjson",
    "iter_sse",
    "loads",
    "post",
    "post_read",
    "read_json",
    "read_object",
    "retry_after_seconds",
    "sent_secrets",
    "wants_usage",
    "with_extra",
]

_MAX_RETRY_AFTER = 3600.0  # seconds: a longer ask is capped (the instance is not lost for days)
_MAX_ERROR_BODY = 64 * 1024  # bytes of an error body kept for the caller


def client_timeout(instance: Instance, remaining: float) -> aiohttp.ClientTimeout:
    """The timeout of one attempt: connect from the instance, total from the deadline.

    ``total`` covers reading the reply too, so no ``sock_read`` (it could only fire later
    than ``total``, and re-arming its timer on every read costs each chunk some time).
    """
    # Whole milliseconds, rounded down (never past the deadline): the first attempt of
    # most requests then asks for the same timeout, made once.
    remaining = max(math.floor(remaining * 1000) / 1000, 0.001)
    return _timeout(remaining, min(instance.connect_timeout, remaining))


@functools.lru_cache(maxsize=1024)
def _timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total, connect=connect, sock_connect=connect)


def loads(data: str | bytes, key: str) -> Any:
    """Parse JSON or raise :class:`BackendProtocolError`."""
    try:
        return _json.loads(data)
    except ValueError as exc:
        raise BackendProtocolError(f"reply is not JSON: {_preview(data)}", instance=key) from exc


def expect_object(value: Any, key: str, what: str = "reply") -> dict[str, Any]:
    """``value`` if it is a JSON object, else :class:`BackendProtocolError`."""
    if not isinstance(value, dict):
        raise BackendProtocolError(f"{what} is not a JSON object: {_preview(value)}", instance=key)
    return value


_JSON_HEADERS = {"Content-Type": "application/json"}
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@functools.lru_cache(maxsize=4096)  # bounded, whatever reloads bring
def _url(url: str) -> URL:
    """``url`` parsed once: the few upstream URLs a config names are reused by every request."""
    return URL(url)


def _request_args(
    body: Mapping[str, Any] | bytes, headers: Mapping[str, str]
) -> tuple[bytes | io.BytesIO, Mapping[str, str]]:
    """The body as compact UTF-8 JSON (bytes: already JSON, as they are) and the headers
    with its Content-Type.

    Past 1 MiB the bytes go in a BytesIO, which aiohttp streams in pieces (raw bytes that
    large would be written in one go, and aiohttp warns that it may stall the loop).
    """
    data = body if isinstance(body, bytes) else _ENCODER.encode(body).encode()
    headers = {**headers, **_JSON_HEADERS} if headers else _JSON_HEADERS
    return (io.BytesIO(data) if len(data) > _LARGE_BODY else data), headers


_LARGE_BODY = 1024 * 1024


def _mapped(exc: Exception, url: str, key: str, replied: bool) -> BackendError | None:
    """The error-tree exception for a low-level failure of a request to ``url``, or None."""
    if isinstance(exc, BackendError):
        return None
    if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError and total timeouts
        phase = "reading the reply" if replied else "waiting for the reply"
        return BackendTimeout(f"timed out {phase} from {url}", instance=key, reason=Reason.TIMEOUT)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return BackendProtocolError(f"connection cut inside the reply: {exc}", instance=key)
    if isinstance(exc, aiohttp.ClientConnectionError | OSError):
        if replied:
            return BackendProtocolError(f"connection closed inside the reply: {exc}", instance=key)
        return BackendUnavailable(f"cannot reach {url}: {_describe(exc)}", instance=key)
    if isinstance(exc, aiohttp.ClientResponseError):
        return BackendProtocolError(f"bad HTTP reply: {exc.message}", instance=key)
    if isinstance(exc, ValueError):  # aiohttp: line too long, bad chunked encoding …
        return BackendProtocolError(f"unreadable reply: {exc}", instance=key)
    return None


_MAPPED = (TimeoutError, aiohttp.ClientError, OSError, ValueError)


@asynccontextmanager
async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any] | bytes,
    *,
    key: str,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """POST ``body`` as JSON (bytes: as they are); yield a 2xx response, raise the error tree
    for anything else.

    Errors raised while the caller reads the response inside the ``async with`` block are
    mapped too (a cut connection after the headers is a protocol error, a read timeout a
    timeout). Leaving the block releases the connection; an unfinished response is closed,
    which cancels the request upstream.
    """
    data, all_headers = _request_args(body, headers)
    replied = False
    try:
        async with session.post(
            _url(url), data=data, headers=all_headers, timeout=timeout, allow_redirects=False
        ) as resp:
            replied = True
            if resp.status >= 300:
                await _raise_for_status(resp, key, headers)
            yield resp
    except _MAPPED as exc:
        mapped = _mapped(exc, url, key, replied)
        if mapped is None:
            raise
        raise mapped from exc


async def post_read(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any] | bytes,
    *,
    key: str,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
) -> bytes:
    """:func:`post` for a whole-body reply: the 2xx body's bytes, errors mapped the same way.

    Written out rather than as ``async with post(...)``: this is the gateway's and
    ``router.chat``'s per-request path, and the generator-based context manager cost a
    measurable share of it.
    """
    data, all_headers = _request_args(body, headers)
    replied = False
    try:
        async with session.post(
            _url(url), data=data, headers=all_headers, timeout=timeout, allow_redirects=False
        ) as resp:
            replied = True
            if resp.status >= 300:
                await _raise_for_status(resp, key, headers)
            return await resp.read()
    except _MAPPED as exc:
        mapped = _mapped(exc, url, key, replied)
        if mapped is None:
            raise
        raise mapped from exc


async def read_json(resp: aiohttp.ClientResponse, key: str) -> dict[str, Any]:
    """The whole body as a JSON object, or :class:`BackendProtocolError`."""
    return read_object(await resp.read(), key)


def read_object(raw: bytes, key: str) -> dict[str, Any]:
    """``raw`` parsed as a JSON object, or :class:`BackendProtocolError`."""
    return expect_object(loads(raw, key), key)


class WireChunk(dict[str, Any]):
    """A stream item parsed from one SSE ``data`` line, and that line's text (``wire``),
    which encodes the item exactly: the gateway forwards ``wire`` (the backend's own bytes)
    instead of encoding the dict again.  Never mutate one: ``wire`` would no longer say it.
    """

    __slots__ = ("wire",)

    def __init__(self, item: dict[str, Any], wire: str) -> None:
        super().__init__(item)
        self.wire = wire


class WireBody(dict[str, Any]):
    """A client's request body parsed, and its bytes as sent (``wire``): an adapter sends
    those bytes instead of encoding the body again when :meth:`sendable` says they carry
    exactly what it would send.  Never mutate one: ``wire`` would no longer say it.
    """

    __slots__ = ("wire",)

    def __init__(self, body: dict[str, Any], wire: bytes) -> None:
        super().__init__(body)
        self.wire = wire

    def sendable(self, model: str, stream: bool, private: frozenset[str] = frozenset()) -> bool:
        """True when ``wire`` asks ``model`` with ``stream`` and holds none of ``private``.

        Conservative: a body whose bytes name ``model`` or ``stream`` more than once (a
        nested key, a duplicate a parser could read either way), hold any ``\\u`` escape
        (a key spelled with one), or start with a byte order mark is encoded again.
        """
        wire = self.wire
        return (
            self.get("model") == model
            and self.get("stream", False) is stream
            and self.keys().isdisjoint(private)
            and wire.count(b'"model"') == 1
            and wire.count(b'"stream"') <= 1
            and b"\\u" not in wire
            and not wire.startswith(b"\xef\xbb\xbf")
        )


async def iter_sse(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str]]:
    """Yield ``(event, data)`` for each server-sent event as soon as its blank line arrives."""
    event = ""
    data: list[str] = []
    async for raw in resp.content:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith(":"):
            continue  # comment / keep-alive
        elif not line.startswith(("id:", "retry:")):
            # Not SSE at all: surface it as data so the adapter reports garbage.
            data.append(line)
    if data:
        yield event or "message", "\n".join(data)


async def iter_ndjson(resp: aiohttp.ClientResponse, key: str) -> AsyncIterator[dict[str, Any]]:
    """Yield each JSON object of a newline-delimited JSON stream as its line arrives."""
    async for raw in resp.content:
        line = raw.strip()
        if line:
            yield expect_object(loads(line, key), key, "stream line")


def bearer_headers(instance: Instance) -> dict[str, str]:
    """``Authorization: Bearer KEY`` when the instance has a key, else nothing (local servers
    need none; Ollama behind an authenticating proxy sends one)."""
    key = instance.api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


#: Headers only an adapter sets (credentials, and what frames the body): extra headers never
#: replace or add them.
_OWN_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "api-key",
        "proxy-authorization",
        "cookie",
        "host",
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
    }
)


def with_extra(own: dict[str, str], extra: Mapping[str, str] | None) -> dict[str, str]:
    """An adapter's ``own`` headers with ``extra`` ones added: an extra header replaces an own
    one of the same name (in any case), but never sets a credential or body-framing header,
    which stay the adapter's own (the instance's key, never a client's)."""
    if not extra:
        return own
    added = {k.lower(): v for k, v in extra.items() if k.lower() not in _OWN_HEADERS}
    out = {k: v for k, v in own.items() if k.lower() not in added}
    out.update(added)
    return out


def wants_usage(request: Mapping[str, Any]) -> bool:
    """True when an OpenAI-shaped streaming ``request`` asked for a usage chunk."""
    options = request.get("stream_options")
    return isinstance(options, Mapping) and options.get("include_usage") is True


def sent_secrets(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The credentials in request ``headers`` (whole values and bare tokens), longest first."""
    found: set[str] = set()
    for name, value in headers.items():
        if name.lower() in ("authorization", "x-api-key", "api-key", "proxy-authorization"):
            found.add(value)
            token = value.partition(" ")[2].strip()
            if token:
                found.add(token)
    return tuple(sorted((s for s in found if len(s) >= 4), key=len, reverse=True))


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` (delay seconds or an HTTP date) as seconds, capped; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = when - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def classify_status(status: int, body: Any, retry_after: float | None) -> Reason:
    """The :class:`Reason` of an HTTP error answer (status >= 300), from data only."""
    err = body.get("error") if isinstance(body, dict) else None
    err_type = err.get("type") if isinstance(err, dict) else None
    if status < 400:
        return Reason.PROTOCOL
    if status in (401, 403):
        return Reason.UNAUTHORIZED
    if status in (429, 529):
        return Reason.OVERLOADED
    if status == 503:
        # llama.cpp while it loads its model; anything else that says "unavailable" is busy
        # for now (Ollama's full queue, Anthropic's overload, a proxy): retry elsewhere.
        return Reason.LOADING if err_type == "unavailable_error" else Reason.OVERLOADED
    if status == 501:
        return Reason.NOT_SUPPORTED
    if status == 404 and _missing_endpoint(body, err_type):
        return Reason.NOT_SUPPORTED
    if status >= 500:
        return Reason.SERVER_ERROR
    return Reason.REJECTED


def _missing_endpoint(body: Any, err_type: Any) -> bool:
    """A 404 for the endpoint itself (no JSON error: a router's page; llama.cpp's
    top-level ``not_found_error``), not for a model the request named (OpenAI's
    ``model_not_found``, Ollama's ``{"error": "model … not found"}``, Anthropic's
    ``{"type": "error", …}``)."""
    if not isinstance(body, dict):
        return True
    return err_type == "not_found_error" and body.get("type") != "error"


_CLASSES: dict[Reason, type[BackendError]] = {
    Reason.REFUSED: BackendUnavailable,
    Reason.LOADING: BackendUnavailable,
    Reason.OVERLOADED: BackendUnavailable,
    Reason.UNAUTHORIZED: BackendUnavailable,
    Reason.NOT_SUPPORTED: BackendUnavailable,
    Reason.TIMEOUT: BackendTimeout,
    Reason.REJECTED: BackendRejected,
    Reason.SERVER_ERROR: BackendProtocolError,
    Reason.PROTOCOL: BackendProtocolError,
}


async def _raise_for_status(
    resp: aiohttp.ClientResponse, key: str, headers: Mapping[str, str]
) -> None:
    status = resp.status
    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
    raw = await resp.content.read(_MAX_ERROR_BODY)
    text = raw.decode("utf-8", "replace")
    body: Any
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        body = text
    reason = classify_status(status, body, retry_after)
    secrets = sent_secrets(headers)
    if reason is Reason.UNAUTHORIZED:
        # Never keep what an auth failure says: upstreams quote the credentials they got.
        message = f"HTTP {status}: the upstream refused the credentials it was sent"
        body = None
    elif status < 400:
        message = f"HTTP {status}: redirect not followed"
        body = None
    else:
        body = redact_value(body, secrets)
        message = f"HTTP {status}: {redact_text(_error_message(body), secrets)}"
    raise _CLASSES[reason](
        message, instance=key, status=status, body=body, reason=reason, retry_after=retry_after
    )


def _error_message(body: Any) -> str:
    """The human part of an error body in any of the backends' shapes."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, str):
            return err
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
    return _preview(body)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error is not None:
        return exc.os_error.strerror or str(exc.os_error)
    return str(exc) or type(exc).__name__


def _preview(value: Any, limit: int = 120) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text if len(text) <= limit else text[:limit] + "…"
