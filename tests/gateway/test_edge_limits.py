"""The edge bounds what a client can hold: slow heads, connection count, Expect, /healthz."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from routing._gateway_server import Gateway
from routing.config import parse_config

CONFIG = (
    "version: 1\nproviders:\n  llamacpp:\n    api: openai\n    instances:\n"
    "      a: {port: 9}\n"
    "gateway: {read_timeout: 0.3, max_connections: 4, max_body_bytes: 2048}\n"
)


async def _gateway() -> Gateway:
    return await Gateway(parse_config(CONFIG, environ={})).start("127.0.0.1", 0)


async def _closed(reader: asyncio.StreamReader, within: float) -> bytes:
    """What the server sent before closing the connection (fails if it stays open)."""
    return await asyncio.wait_for(reader.read(), within)


def test_slow_request_head_is_closed_after_read_timeout() -> None:
    """A connection sending its head byte by byte is closed once read_timeout has passed."""

    async def scenario() -> float:
        gw = await _gateway()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            started = time.monotonic()
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never the blank line
            await writer.drain()
            await _closed(reader, 5.0)
            writer.close()
            return time.monotonic() - started
        finally:
            await gw.stop()

    assert asyncio.run(scenario()) < 5.0


def test_connections_past_the_limit_are_closed_and_the_rest_served() -> None:
    """With max_connections 4, a fifth open connection is closed; the held ones still work."""

    async def scenario() -> None:
        gw = await _gateway()
        held = []
        try:
            for _ in range(4):
                held.append(await asyncio.open_connection("127.0.0.1", gw.port))
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            assert await _closed(reader, 5.0) == b""
            writer.close()
            r, w = held[0]
            w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await w.drain()
            assert (await asyncio.wait_for(r.readline(), 5.0)).startswith(b"HTTP/1.1 200")
        finally:
            for _, w in held:
                w.close()
            await gw.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("length", "first_line"),
    [
        (10_000_000, b"HTTP/1.1 413"),
        (100, b"HTTP/1.1 100 Continue"),
    ],
)
def test_expect_continue_checks_the_limit_first(length: int, first_line: bytes) -> None:
    """Expect: 100-continue with an oversized Content-Length gets 413 and never 100 Continue."""

    async def scenario() -> bytes:
        gw = await _gateway()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                b"Content-Length: " + str(length).encode() + b"\r\n\r\n"
            )
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 5.0)
            writer.close()
            return line
        finally:
            await gw.stop()

    assert asyncio.run(scenario()).startswith(first_line)


def test_malformed_http_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """Garbage instead of HTTP gets a 400 and one warning line without a traceback."""

    async def scenario() -> bytes:
        gw = await _gateway()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(b"\x16\x03\x01 not http at all\r\n\r\n")
            await writer.drain()
            answer = await _closed(reader, 5.0)
            writer.close()
            return answer
        finally:
            await gw.stop()

    with caplog.at_level(logging.DEBUG):
        answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400")
    records = [r for r in caplog.records if r.name.startswith(("routing", "aiohttp"))]
    assert len(records) == 1, records
    assert records[0].exc_info is None and "\n" not in records[0].getMessage()
    assert "BadHttpMethod" in records[0].getMessage()


def test_healthz_answers_without_probing() -> None:
    """GET /healthz is 200 while serving, even when every backend is down."""

    async def scenario() -> bytes:
        gw = await _gateway()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await writer.drain()
            answer = await _closed(reader, 5.0)
            writer.close()
            return answer
        finally:
            await gw.stop()

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"status":"ok"}')


def test_slow_body_is_408_after_read_timeout() -> None:
    """A body that stops arriving is answered 408 once read_timeout has passed, then closed."""

    async def scenario() -> bytes:
        gw = await _gateway()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mo'
            )
            await writer.drain()
            answer = await _closed(reader, 5.0)
            writer.close()
            return answer
        finally:
            await gw.stop()

    answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"read_timeout" in answer
