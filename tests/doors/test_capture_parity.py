"""The fake llama.cpp's new endpoints against the captures of a real server
(``shared/wire/llamacpp``): same statuses, content types, keys in the same order, and the
same bodies where a body is fixed text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from doors_support import Reply, http, sse_events

from fake_servers import FakeServerHandle, LoopThread

WIRE = Path(__file__).parents[3] / "shared" / "wire" / "llamacpp"
MODEL = "my-alias.gguf"
HI = [{"role": "user", "content": "hi"}]
Pair = tuple[FakeServerHandle, FakeServerHandle]

pytestmark = pytest.mark.skipif(not WIRE.is_dir(), reason=f"no captures at {WIRE}")


def _capture(name: str) -> tuple[int, dict[str, str], str]:
    """Status, headers and body of a captured exchange."""
    head, _, body = (WIRE / name).read_text("utf-8").partition("\n\n")
    lines = head.splitlines()
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body.strip()


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    return "number" if isinstance(value, int | float) else type(value).__name__


def _same_kind(reply: Reply, name: str) -> str:
    status, headers, body = _capture(name)
    assert reply.status == status
    assert reply.headers["Content-Type"].split(";")[0] == headers["Content-Type"].split(";")[0]
    return body


@pytest.fixture(scope="module")
def fakes(fake_loop: LoopThread) -> Iterator[Pair]:
    """A chat llama.cpp fake and one started with --embeddings, both named as captured."""
    chat = FakeServerHandle.start_new(fake_loop, "llamacpp", [MODEL])
    emb = FakeServerHandle.start_new(fake_loop, "llamacpp", [MODEL], embeddings=True)
    yield chat, emb
    chat.stop()
    emb.stop()


@pytest.mark.parametrize(
    ("name", "path", "body"),
    [
        ("completions.txt", "/v1/completions", {"prompt": "def f(a):", "max_tokens": 6}),
        ("messages.txt", "/v1/messages", {"model": MODEL, "max_tokens": 8, "messages": HI}),
        ("messages_no_max_tokens.txt", "/v1/messages", {"model": MODEL, "messages": HI}),
        (
            "messages_count_tokens.txt",
            "/v1/messages/count_tokens",
            {"model": MODEL, "messages": HI},
        ),
    ],
    ids=["completions", "messages", "messages-no-max-tokens", "count-tokens"],
)
def test_whole_replies(fakes: Pair, name: str, path: str, body: dict[str, Any]) -> None:
    """Keys in the captured order, values of the captured types."""
    reply = http("POST", fakes[0].url + path, body)
    captured = json.loads(_same_kind(reply, name))
    got = reply.json()
    if "stop_reason" in captured:  # the capture ran out of tokens; the fake ends its text
        got["stop_reason"] = captured["stop_reason"]
    assert _shape(got) == _shape(captured)


def test_embeddings(fakes: Pair) -> None:
    """Embeddings with the flag as captured; without it the captured 501, byte for byte."""
    reply = http(
        "POST", fakes[1].url + "/v1/embeddings", {"model": "my-embed", "input": ["a", "b"]}
    )
    captured = json.loads(_same_kind(reply, "embeddings.txt"))
    assert _shape(reply.json()) == _shape(captured)
    refused = http("POST", fakes[0].url + "/v1/embeddings", {"input": "a"})
    assert refused.body.decode() == _same_kind(refused, "embeddings_not_enabled.txt")
    infill = http("POST", fakes[0].url + "/infill", {"input_prefix": "a"})
    assert infill.body.decode() == _same_kind(infill, "infill.txt")


@pytest.mark.parametrize(
    ("name", "path", "body"),
    [
        ("completions_stream.txt", "/v1/completions", {"prompt": "x", "stream": True}),
        (
            "messages_stream.txt",
            "/v1/messages",
            {"model": MODEL, "max_tokens": 4, "messages": HI, "stream": True},
        ),
    ],
    ids=["completions", "messages"],
)
def test_streams(fakes: Pair, name: str, path: str, body: dict[str, Any]) -> None:
    """Streams: the captured event names around the deltas, first and last items' keys."""
    reply = http("POST", fakes[0].url + path, body)
    captured = sse_events(_same_kind(reply, name).encode())
    got = sse_events(reply.body)
    assert [n for n, _ in got][:2] == [n for n, _ in captured][:2]
    assert [n for n, _ in got][-3:] == [n for n, _ in captured][-3:]
    for index in (0, -1):
        assert _shape(got[index][1]) == _shape(captured[index][1])
    assert reply.body.rstrip().endswith(b"data: [DONE]") == ("[DONE]" in _capture(name)[2])
