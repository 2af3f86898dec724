"""Request bodies sent with a ``Content-Encoding``: decoded as they arrive, never past a limit.

The gateway's HTTP server runs with aiohttp's own request decompression off
(``auto_decompress=False``): aiohttp accepted a gzip body cut short inside its CRC and
length trailer as whole, answered a deflate body cut short and an encoding it lacks a
package for (``br``, ``zstd``) itself in text/plain before any door could, and counted
nothing of what a body's compressed bytes cost.  The doors decode here instead:

- ``identity`` (or an empty value): the bytes as sent;
- ``gzip`` (RFC 1952): zlib verifies each member's CRC and length; concatenated members
  are one body, as aiohttp read them;
- ``deflate``: the zlib format (RFC 1950), or a raw deflate stream (RFC 1951) when the
  first byte is not a zlib header, as aiohttp accepted;
- anything else, and lists of codings (``gzip, gzip``): not decoded (the door's 415).

A :class:`BodyDecoder` inflates one chunk at a time into at most the output its caller
allows (``max_length``), so a decompression bomb is never inflated past the body limit,
and :meth:`BodyDecoder.end` refuses a stream that has not ended.
"""

from __future__ import annotations

import zlib

__all__ = ["DECODED", "MAX_MEMBERS", "BodyDecodeError", "BodyDecoder"]

#: The ``Content-Encoding`` values (stripped, lower case) a door accepts.
DECODED = frozenset({"", "identity", "gzip", "deflate"})

#: The most concatenated gzip or deflate members one body may hold (aiohttp's cap too):
#: each costs a new inflater, and an empty one is 20 bytes on the wire.
MAX_MEMBERS = 1024

_GZIP = 16 + zlib.MAX_WBITS  # the gzip wrapper only: its trailer checked
_ZLIB = zlib.MAX_WBITS
_RAW = -zlib.MAX_WBITS


class BodyDecodeError(ValueError):
    """The body is not data of its ``Content-Encoding`` (or is cut short)."""


class BodyDecoder:
    """Inflates one request body of ``encoding`` (``gzip`` or ``deflate``), chunk by chunk."""

    __slots__ = ("_inflater", "_members", "_wbits", "encoding")

    def __init__(self, encoding: str) -> None:
        if encoding not in ("gzip", "deflate"):
            raise ValueError(f"not a compressed Content-Encoding: {encoding!r}")
        self.encoding = encoding
        # deflate's flavour is known from its first byte (see feed)
        self._wbits = _GZIP if encoding == "gzip" else 0
        self._inflater: zlib._Decompress | None = None
        self._members = 0

    def feed(self, chunk: bytes, max_length: int) -> bytes:
        """The output of ``chunk``: at most ``max_length`` (> 0) bytes.

        Exactly ``max_length`` bytes may mean the input holds more: a caller that passes
        one byte more than it accepts learns that its limit is exceeded.
        """
        parts = []
        room = max_length
        while chunk:
            inflater = self._inflater
            if inflater is None or inflater.eof:
                inflater = self._next_member(chunk)
            try:
                part = inflater.decompress(chunk, room)
            except zlib.error as exc:
                raise BodyDecodeError(self._invalid()) from exc
            parts.append(part)
            room -= len(part)
            if room <= 0:
                break
            # Short of max_length all input was taken; past a member's end, the rest
            # is the next member.
            chunk = inflater.unused_data
        return b"".join(parts)

    def end(self) -> None:
        """Check that the body ended where its stream did (a body with no bytes is empty)."""
        if self._inflater is not None and not self._inflater.eof:
            raise BodyDecodeError(f"{self._invalid()}: it ends before its compressed data does")

    def _next_member(self, chunk: bytes) -> zlib._Decompress:
        self._members += 1
        if self._members > MAX_MEMBERS:
            raise BodyDecodeError(f"{self._invalid()}: more than {MAX_MEMBERS} members")
        if not self._wbits:
            # RFC 1950: a zlib stream starts with CM = 8 in its low bits; anything else
            # is taken for a raw deflate stream (aiohttp's rule, kept for its clients).
            self._wbits = _ZLIB if chunk[0] & 0x0F == 8 else _RAW
        self._inflater = zlib.decompressobj(self._wbits)
        return self._inflater

    def _invalid(self) -> str:
        return f"request body is not valid {self.encoding} data (its Content-Encoding)"
