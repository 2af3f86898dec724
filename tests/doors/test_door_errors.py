"""The new endpoints' failures: wrong fields and hostile bodies are 400s in the door's shape
that reach no backend; failover before the first byte; a cut stream ends in an error event;
a backend's 4xx reaches the Anthropic door in Anthropic's shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from doors_support import GatewayHandle, Reply, config_text, http, set_keys, sse_events

from fake_servers import FakeServerHandle, LoopThread

MODEL = "shared.gguf"
CLAUDE = "claude-3-5-haiku-latest"
HI = [{"role": "user", "content": "hi"}]


class Gate:
    """The module's gateway: two llama.cpp fakes serving one model, and an Anthropic one."""

    def __init__(self, gateway: GatewayHandle, fakes: dict[str, FakeServerHandle]) -> None:
        self.gateway = gateway
        self.fakes = fakes

    def post(
        self, path: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None
    ) -> Reply:
        """POST to the gateway."""
        return http("POST", self.gateway.url + path, body, headers)

    def healed(self) -> None:
        """Every fault off, and the gateway's router told so by a fresh probe of each."""
        for fake in self.fakes.values():
            fake.set_fault("none")
        self.gateway.loop.run(self.gateway.gateway.router.refresh())

    def backend_posts(self) -> int:
        """POSTs every fake has received so far."""
        return sum(1 for f in self.fakes.values() for r in f.requests if r["method"] == "POST")


@pytest.fixture(scope="module")
def gate(fake_loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    """A gateway over llamacpp:a, llamacpp:b (one model) and anthropic:one."""
    with pytest.MonkeyPatch.context() as patch:
        keys = set_keys(patch)
        fakes = {
            "a": FakeServerHandle.start_new(fake_loop, "llamacpp", [MODEL]),
            "b": FakeServerHandle.start_new(fake_loop, "llamacpp", [MODEL]),
            "claude": FakeServerHandle.start_new(
                fake_loop, "anthropic", [CLAUDE], api_key=keys["anthropic"]
            ),
        }
        path = Path(tmp_path_factory.mktemp("errors")) / "gateway.yaml"
        path.write_text(
            config_text(
                {
                    "llamacpp:a": fakes["a"],
                    "llamacpp:b": fakes["b"],
                    "anthropic:one": fakes["claude"],
                }
            ),
            "utf-8",
        )
        gateway = GatewayHandle.start(fake_loop, path)
        try:
            yield Gate(gateway, fakes)
        finally:
            gateway.stop()
            for fake in fakes.values():
                fake.stop()


MESSAGE = {"model": MODEL, "max_tokens": 8, "messages": HI}
WRONG = [
    ("/v1/messages", {**MESSAGE, "messages": "hi"}, "messages"),
    ("/v1/messages", {**MESSAGE, "max_tokens": "8"}, "max_tokens"),
    (
        "/v1/messages",
        {**MESSAGE, "messages": [{"role": "user", "content": [{"type": "image"}]}]},
        "messages[0].content[0].source",
    ),
    ("/v1/messages", {**MESSAGE, "tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ("/v1/messages/count_tokens", {"model": MODEL}, "messages"),
    ("/v1/embeddings", {"model": MODEL}, "input"),
    ("/v1/embeddings", {"model": MODEL, "input": "x", "encoding_format": "hex"}, "encoding_format"),
    ("/v1/completions", {"model": MODEL, "prompt": 5}, "prompt"),
    ("/v1/completions", {"model": MODEL, "prompt": "x", "temperature": 9}, "temperature"),
    ("/api/generate", {"model": MODEL, "prompt": 5}, "prompt"),
    (
        "/api/generate",
        {"model": MODEL, "prompt": "x", "options": {"num_predict": "9"}},
        "options.num_predict",
    ),
    ("/api/embed", {"model": MODEL, "input": 5}, "input"),
    ("/api/embeddings", {"model": MODEL}, "prompt"),
    ("/api/show", {"model": 5}, "model"),
]


@pytest.mark.parametrize(
    ("path", "body", "param"), WRONG, ids=[f"{p}:{param}" for p, _, param in WRONG]
)
def test_wrong_field_is_a_400_in_the_door_shape(
    gate: Gate, path: str, body: dict[str, Any], param: str
) -> None:
    """A field of the wrong type or range is a 400 naming it; no backend is asked."""
    before = gate.backend_posts()
    reply = gate.post(path, body)
    assert reply.status == 400, reply.body
    error = reply.json()
    if path.startswith("/v1/messages"):
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert f"'{param}'" in error["error"]["message"]
    elif path.startswith("/api/"):
        assert f"'{param}'" in error["error"]
    else:
        assert error["error"]["param"] == param
    assert gate.backend_posts() == before


@pytest.mark.parametrize(
    ("raw", "headers", "status"),
    [
        (b'{"model": "m", "max_tokens": NaN, "messages": []}', {}, 400),
        (b'{"model": "m", "messages": [', {}, 400),
        (b'{"model": "m", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", {}, 400),
        (b'{"model": "m\xff"}', {}, 400),
        (b"xxxx", {"Content-Encoding": "compress"}, 415),
    ],
    ids=["nan", "truncated", "too-deep", "invalid-utf8", "bad-encoding"],
)
def test_hostile_body_answered_in_anthropic_shape(
    gate: Gate, raw: bytes, headers: dict[str, str], status: int
) -> None:
    """Hostile bodies at the Anthropic door are answered, in its shape, without a backend."""
    before = gate.backend_posts()
    reply = gate.post("/v1/messages", raw, headers)
    assert reply.status == status
    assert reply.json()["type"] == "error"
    assert gate.backend_posts() == before


@pytest.mark.parametrize("stream", [False, True])
def test_failover_before_the_first_byte(gate: Gate, stream: bool) -> None:
    """A 500 from the first server: messages and completions answer from the second."""
    a_first = gate.post("/v1/messages", {**MESSAGE, "stream": stream})
    assert a_first.headers["X-Routed-To"] == "llamacpp:a"
    gate.fakes["a"].set_fault("error500")
    try:
        message = gate.post("/v1/messages", {**MESSAGE, "stream": stream})
        text = gate.post("/v1/completions", {"model": MODEL, "prompt": "x", "stream": stream})
    finally:
        gate.healed()
    assert (message.status, text.status) == (200, 200)
    assert message.headers["X-Routed-To"] == text.headers["X-Routed-To"] == "llamacpp:b"


def test_stream_cut_after_the_first_byte_ends_in_an_error_event(gate: Gate) -> None:
    """A stream cut mid-way (after the first byte) ends in Anthropic's error event."""
    for name in ("a", "b"):
        gate.fakes[name].set_fault("drop")
    try:
        reply = gate.post("/v1/messages", {**MESSAGE, "stream": True})
    finally:
        gate.healed()
    events = sse_events(reply.body)
    assert reply.status == 200 and events[0][0] == "message_start"
    assert events[-1][0] == "error" and events[-1][1]["error"]["type"] == "api_error"
    assert "message_stop" not in [name for name, _ in events]


def test_backend_rejection_reaches_the_client_in_anthropic_shape(gate: Gate) -> None:
    """A 4xx of an Anthropic backend (max_tokens missing) is passed on as it sent it."""
    reply = gate.post("/v1/messages", {"model": CLAUDE, "messages": HI})
    assert reply.status == 400
    assert reply.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }
    assert reply.headers["X-Routed-To"] == "anthropic:one"
