"""Raw HTTP/1.1 over a socket: requests built from data, replies parsed without a client.

A client library would refuse to send most of the hostile corpus (bad lengths, floods,
broken encodings) or would hide what came back first (an interim ``100 Continue``).
"""

from __future__ import annotations

import functools
import gzip
import json
import selectors
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

HOSTILE_MODEL = "a.gguf"
#: ``$CHAT`` in a body text: the members of a valid one-message chat request (no braces).
CHAT_MEMBERS = '"model":"$MODEL","messages":[{"role":"user","content":"hi"}],"stream":false'


@dataclass
class Reply:
    """One HTTP response: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Exchange:
    """Everything that came back on one connection, interim responses included."""

    replies: list[Reply] = field(default_factory=list)
    raw: bytes = b""

    @property
    def final(self) -> Reply | None:
        """The first non-1xx response, or None when the connection closed without one."""
        return next((r for r in self.replies if r.status >= 200), None)

    @property
    def interim(self) -> list[int]:
        """Statuses of the 1xx responses sent before the final one."""
        out = []
        for reply in self.replies:
            if reply.status >= 200:
                break
            out.append(reply.status)
        return out


def build(case: dict[str, Any]) -> tuple[bytes, bytes]:
    """The head and the body bytes a corpus ``case`` describes (see hostile_requests.yaml).

    ``then`` (a case or a list of them) is sent right after, on the same connection.
    """
    head, body = _build_one(case)
    then = case.get("then", [])
    for follower in then if isinstance(then, list) else [then]:
        extra_head, extra_body = _build_one({"door": case.get("door"), **follower})
        body += extra_head + extra_body
    return head, body


def _build_one(case: dict[str, Any]) -> tuple[bytes, bytes]:
    if "raw" in case:
        return case["raw"].encode("latin-1"), b""
    body = _body(case)
    encoding = None
    if "bomb" in case:
        body, encoding = gzip_bomb(int(case["bomb"])), "gzip"
    elif case.get("gzip"):
        body, encoding = gzip.compress(body), "gzip"
    elif case.get("deflate"):
        body, encoding = zlib.compress(body), "deflate"
    elif case.get("raw_deflate"):
        packer = zlib.compressobj(wbits=-15)
        body, encoding = packer.compress(body) + packer.flush(), "deflate"
    if "truncate" in case:
        body = body[: int(len(body) * case["truncate"])]
    body += _text(case.get("append", "")).encode("latin-1")
    lines = [
        f"{case.get('method', 'POST')} {target(case)} {case.get('version', 'HTTP/1.1')}",
        "Host: 127.0.0.1",
    ]
    if not case.get("keep_alive"):
        lines.append("Connection: close")
    content_type = case.get("content_type", "application/json")
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    encoding = case.get("content_encoding", encoding)
    if encoding is not None:
        lines.append(f"Content-Encoding: {encoding}")
    chunked = case.get("chunked")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        body = (
            b"".join(
                b"%x\r\n%s\r\n" % (len(body[i : i + chunked]), body[i : i + chunked])
                for i in range(0, len(body), chunked)
            )
            + b"0\r\n\r\n"
        )
    elif case.get("content_length", "auto") == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif case["content_length"] is not None:
        lines.append(f"Content-Length: {case['content_length']}")
    lines += [
        name if value is None else f"{name}: {value}" for name, value in case.get("headers", [])
    ]
    if "long_header" in case:
        lines.append("X-Long: " + "a" * int(case["long_header"]))
    for text, count in case.get("header_parts", []):
        lines += [text.format(i=i) for i in range(count)]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head, (body if case.get("send_body", True) else b"")


def target(case: dict[str, Any]) -> str:
    """The request target of ``case``: its ``path``, else its door's chat endpoint."""
    if "long_path" in case:
        return "/v1/" + "a" * int(case["long_path"])
    if "path" in case:
        return str(case["path"])
    return "/api/chat" if case.get("door") == "ollama" else "/v1/chat/completions"


def _body(case: dict[str, Any]) -> bytes:
    if "json" in case:
        return json.dumps(_model(case["json"])).encode()
    if "parts" in case:
        text = "".join(_text(part) * count for part, count in case["parts"])
    else:
        text = _text(str(case.get("body", "")))
    return text.encode("latin-1")


def _text(text: str) -> str:
    """``$CHAT`` and ``$MODEL`` replaced (text of code points < 256: one byte each)."""
    return text.replace("$CHAT", CHAT_MEMBERS).replace("$MODEL", HOSTILE_MODEL)


@functools.cache
def gzip_bomb(size: int) -> bytes:
    """A valid gzip member inflating to ``size`` zero bytes (a multiple of 1 MiB).

    Built without compressing ``size`` bytes: after a full flush, every further MiB of
    zeros compresses to the same block, which is repeated.
    """
    mib = bytes(1 << 20)
    count = max(size >> 20, 2)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = packer.compress(mib) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(mib) + packer.flush(zlib.Z_FULL_FLUSH)
    assert packer.compress(mib) + packer.flush(zlib.Z_FULL_FLUSH) == again
    end = packer.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(mib, crc)
    return (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        + first
        + again * (count - 1)
        + end
        + struct.pack("<II", crc, (count << 20) & 0xFFFFFFFF)
    )


def _model(value: Any) -> Any:
    if value == "$MODEL":
        return HOSTILE_MODEL
    if isinstance(value, dict):
        return {k: _model(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_model(v) for v in value]
    return value


def exchange(
    port: int, head: bytes, body: bytes, *, half_close: bool = False, timeout: float = 15.0
) -> Exchange:
    """Send ``head`` + ``body`` and read until the server closes (or ``timeout``).

    Writing stops as soon as a final answer starts arriving or the server stops reading,
    as a client that respects an early 413 would; reading goes on until EOF.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setblocking(False)
    outgoing = memoryview(head + body)
    received = bytearray()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        writing = True
        while time.monotonic() < deadline:
            for key, events in selector.select(max(deadline - time.monotonic(), 0.0)):
                del key
                if events & selectors.EVENT_READ:
                    try:
                        chunk = sock.recv(65536)
                    except (ConnectionResetError, BlockingIOError):
                        chunk = b""
                    if not chunk:
                        sock.close()
                        return parse(bytes(received))
                    received += chunk
                if writing and events & selectors.EVENT_WRITE:
                    try:
                        sent = sock.send(outgoing[:65536])
                    except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                        sent = len(outgoing)
                    outgoing = outgoing[sent:]
                    if not outgoing or _final_started(received):
                        writing = False
                        if half_close and not outgoing:
                            sock.shutdown(socket.SHUT_WR)
                        selector.modify(sock, selectors.EVENT_READ)
        sock.close()
    raise TimeoutError(f"no end of the answer in {timeout} s: {bytes(received[:200])!r}")


def _final_started(received: bytearray) -> bool:
    return any(reply.status >= 200 for reply in parse(bytes(received)).replies)


def parse(raw: bytes) -> Exchange:
    """Every complete response in ``raw`` (interim ones have no body)."""
    out = Exchange(raw=raw)
    rest = raw
    while rest.startswith(b"HTTP/"):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status < 200:
            out.replies.append(Reply(status, headers, b""))
            continue
        if "content-length" in headers:
            size = int(headers["content-length"])
            body, rest = rest[:size], rest[size:]
        elif headers.get("transfer-encoding") == "chunked":
            body, rest = _dechunk(rest)
        else:
            body, rest = rest, b""
        out.replies.append(Reply(status, headers, body))
    return out


def _dechunk(data: bytes) -> tuple[bytes, bytes]:
    body = bytearray()
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            return bytes(body), data.partition(b"\r\n")[2]
        body += data[:size]
        data = data[size + 2 :]
