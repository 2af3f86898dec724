"""BodyDecoder: gzip and deflate request bodies decoded chunk by chunk, bounded, checked whole."""

from __future__ import annotations

import gzip
import zlib

import pytest
from raw_http import gzip_bomb

from routing._content_encoding import MAX_MEMBERS, BodyDecodeError, BodyDecoder

TEXT = b'{"model":"a.gguf","messages":[{"role":"user","content":"' + b"hi " * 200 + b'"}]}'
EMPTY_GZIP = gzip.compress(b"", mtime=0)


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


ENCODED = {
    "gzip": gzip.compress(TEXT),
    "deflate-zlib": zlib.compress(TEXT),
    "deflate-raw": _raw_deflate(TEXT),
}


def _decode(encoding: str, body: bytes, step: int = 1 << 16, limit: int = 1 << 20) -> bytes:
    """The body decoded as the gateway reads it: ``step`` bytes at a time, then ended."""
    decoder = BodyDecoder(encoding)
    out = bytearray()
    for start in range(0, len(body), step):
        out += decoder.feed(body[start : start + step], limit - len(out) + 1)
        assert len(out) <= limit + 1
    decoder.end()
    return bytes(out)


@pytest.mark.parametrize("kind", ENCODED)
@pytest.mark.parametrize("step", [1, 7, 1 << 16])
def test_decodes_whatever_the_chunks(kind: str, step: int) -> None:
    """gzip, zlib-wrapped and raw deflate decode alike, fed one byte or all at once."""
    assert _decode(kind.partition("-")[0], ENCODED[kind], step) == TEXT


@pytest.mark.parametrize("kind", ENCODED)
def test_every_cut_is_refused(kind: str) -> None:
    """A body cut anywhere (inside a gzip trailer too) is refused, never taken as whole."""
    body = ENCODED[kind]
    for cut in range(1, len(body)):
        with pytest.raises(BodyDecodeError, match="is not valid"):
            _decode(kind.partition("-")[0], body[:cut], step=5)


def test_gzip_checks_its_crc_and_length() -> None:
    """A gzip member whose trailer does not match its data is refused."""
    body = ENCODED["gzip"]
    with pytest.raises(BodyDecodeError):
        _decode("gzip", body[:-8] + bytes(8))
    with pytest.raises(BodyDecodeError):
        _decode("gzip", body[:-4] + b"\x01\x00\x00\x00")


def test_concatenated_members_are_one_body() -> None:
    """Members follow each other, within a chunk or across chunks; garbage after is refused."""
    body = ENCODED["gzip"] + EMPTY_GZIP + gzip.compress(b" ")
    assert _decode("gzip", body) == TEXT + b" "
    assert _decode("gzip", body, step=3) == TEXT + b" "
    with pytest.raises(BodyDecodeError):
        _decode("gzip", ENCODED["gzip"] + b"\x00")


def test_members_are_capped() -> None:
    """MAX_MEMBERS members decode; one more is refused (each costs a new inflater)."""
    assert _decode("gzip", ENCODED["gzip"] + EMPTY_GZIP * (MAX_MEMBERS - 1)) == TEXT
    with pytest.raises(BodyDecodeError, match=f"more than {MAX_MEMBERS} members"):
        _decode("gzip", ENCODED["gzip"] + EMPTY_GZIP * MAX_MEMBERS)


def test_a_bomb_is_inflated_no_further_than_asked() -> None:
    """feed never returns more than max_length, however much the chunk holds."""
    bomb = gzip_bomb(64 << 20)
    decoder = BodyDecoder("gzip")
    assert len(decoder.feed(bomb, 1001)) == 1001


def test_an_empty_body_is_empty() -> None:
    """No bytes at all is an empty body (the JSON parser then says why it is not enough)."""
    decoder = BodyDecoder("deflate")
    assert decoder.feed(b"", 10) == b""
    decoder.end()


def test_only_compressed_encodings() -> None:
    """A decoder is only made for gzip and deflate."""
    with pytest.raises(ValueError, match="br"):
        BodyDecoder("br")
