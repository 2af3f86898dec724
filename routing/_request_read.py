"""Reading a request's body: bounded in size and time, decoded, parsed as a JSON object.

:func:`read_json_object` is where every door reads a body; each way a body can be
unacceptable ends here in a :class:`~routing._gateway_http.RequestError` (408, 413, 415,
400, or 403 for a model the client key may not use).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from routing._auth import ClientKey
from routing._content_encoding import DECODED, BodyDecodeError, BodyDecoder
from routing._gateway_http import RequestError, route_info
from routing._request_body import parse_json_object
from routing.adapters._http import WireBody
from routing.errors import InvalidRequest

__all__ = ["read_json_object"]


async def read_json_object(
    request: web.Request, limit: int, timeout: float | None = None, *, wire: bool = False
) -> dict[str, Any]:
    """The body as a JSON object, or :class:`RequestError`; every body ends in an answer.

    408 when the body has not arrived within ``timeout`` seconds (``gateway.read_timeout``);
    413 beyond ``limit`` bytes, announced or read, as sent and after decoding (a gzip bomb
    is inflated no further than the limit); 415 for a ``Content-Encoding`` not in
    :data:`~routing._content_encoding.DECODED`; 400 for data that is not of its
    ``Content-Encoding`` or ends before it does, a body cut short or with broken chunking,
    and everything :func:`parse_json_object` refuses.  The gateway's server leaves bodies
    compressed (``auto_decompress=False``): they are decoded here, chunk by chunk
    (:mod:`routing._content_encoding`).  ``wire``: return a
    :class:`~routing.adapters._http.WireBody` (the decoded bytes kept, for an adapter to
    forward as they are).
    """
    encoding = request.headers.get("Content-Encoding")
    decoder = None if encoding is None else _decoder(request)
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    content = request.content
    data: bytes | bytearray
    try:
        if decoder is None and content.is_eof():  # the whole body came with the head:
            data = content.read_nowait(-1)  # no wait, so no timer
            if len(data) > limit:
                raise _too_large(limit)
        else:
            data = bytearray()
            async with asyncio.timeout(timeout):
                await _read_chunks(request, decoder, data, limit)
    except TimeoutError:
        raise RequestError(
            408,
            f"request body not received within {timeout:g}s (gateway.read_timeout)",
            code="request_timeout",
        ) from None
    except web.RequestPayloadError as exc:
        message = f"request body could not be read: {str(exc).splitlines()[-1].strip()}"
        raise RequestError(400, message, code="invalid_body") from None
    except BodyDecodeError as exc:
        raise RequestError(400, str(exc), code="invalid_body") from None
    data = data if isinstance(data, bytes) else bytes(data)
    try:
        body = parse_json_object(data)
    except InvalidRequest as exc:
        raise RequestError.invalid(exc) from None
    if wire:
        body = WireBody(body, data)
    client = route_info(request).client
    if client is not None and not client.allows(body.get("model")):
        raise _not_allowed(client, body.get("model"))
    return body


def _decoder(request: web.Request) -> BodyDecoder | None:
    """The decoder of the request's ``Content-Encoding`` (None: identity), or its 415."""
    # Repeated headers are one list of codings (RFC 9110 5.3): ``gzip`` twice is refused.
    value = ", ".join(request.headers.getall("Content-Encoding")).strip()
    encoding = value.lower()
    if encoding not in DECODED:
        raise RequestError(
            415,
            f"Content-Encoding {value[:40]!r} is not "
            f"supported; send {', '.join(sorted(DECODED - {''}))}",
            code="unsupported_content_encoding",
        )
    return BodyDecoder(encoding) if encoding in ("gzip", "deflate") else None


async def _read_chunks(
    request: web.Request, decoder: BodyDecoder | None, data: bytearray, limit: int
) -> None:
    """Read the body into ``data`` as it arrives, decoded when ``decoder`` is given: no more
    than ``limit`` bytes either side."""
    received = 0
    while chunk := await request.content.readany():
        received += len(chunk)
        # One byte more than fits is enough to know the body does not.
        data += chunk if decoder is None else decoder.feed(chunk, limit - len(data) + 1)
        if len(data) > limit or received > limit:
            raise _too_large(limit)
    if decoder is not None:
        decoder.end()


def _not_allowed(client: ClientKey, model: object) -> RequestError:
    """403 ``model_not_allowed``: the key's ``models`` globs do not cover ``model``."""
    allowed = ", ".join(client.models)
    named = f"model {model!r}" if isinstance(model, str) else "a request naming no model"
    return RequestError(
        403,
        f"key {client.name!r} may not use {named}; it may use models matching {allowed}",
        code="model_not_allowed",
        type_="permission_error",
        param="model",
    )


def _too_large(limit: int) -> RequestError:
    return RequestError(413, f"request body is larger than {limit} bytes", code="request_too_large")
