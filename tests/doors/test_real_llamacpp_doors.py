"""Every door over real llama.cpp (extra `real`): a chat server and an --embeddings server
reporting the same model name; chat lands on one, embeddings on the other; and the fake
llama.cpp answers the new endpoints in the real server's shapes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import ollama
import openai
import pytest
from doors_support import GatewayHandle, Reply, http, sse_events

from fake_servers import FakeServerHandle, LoopThread
from routing.conformance.real_llamacpp import STARTUP_DEADLINE, RealLlamaCpp, missing_reason

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason())),
]

ALIAS = "same-name.gguf"
HI = [{"role": "user", "content": "hi"}]


class EmbeddingsServer(RealLlamaCpp):
    """A real llama-server started with ``--embeddings`` (mean pooling: OpenAI-compatible)."""

    def command(self) -> list[str]:
        """The usual command line plus the embeddings flags."""
        return [*super().command(), "--embeddings", "--pooling", "mean"]


class Servers:
    """The real servers, fakes of both, and a gateway over the real ones."""

    def __init__(
        self,
        real: dict[str, RealLlamaCpp],
        fakes: dict[str, FakeServerHandle],
        gateway: GatewayHandle,
    ) -> None:
        self.real = real
        self.fakes = fakes
        self.gateway = gateway

    def both(self, name: str, path: str, body: dict[str, Any]) -> tuple[Reply, Reply]:
        """The real and the fake server ``name`` answering the same request."""
        return (
            http("POST", self.real[name].url + path, body),
            http("POST", self.fakes[name].url + path, body),
        )


@pytest.fixture(scope="module")
def servers(fake_loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Real chat + embeddings servers (chat declared first), their fakes, a gateway."""
    real = {"chat": RealLlamaCpp(ALIAS), "embed": EmbeddingsServer(ALIAS)}
    fakes: dict[str, FakeServerHandle] = {}
    gateway = None

    async def start() -> None:
        await asyncio.gather(*(s.start() for s in real.values()))

    try:
        fake_loop.run(start(), timeout=STARTUP_DEADLINE + 10)
        fakes["chat"] = FakeServerHandle.start_new(fake_loop, "llamacpp", [ALIAS])
        fakes["embed"] = FakeServerHandle.start_new(fake_loop, "llamacpp", [ALIAS], embeddings=True)
        path = Path(tmp_path_factory.mktemp("real")) / "gateway.yaml"
        path.write_text(
            "version: 1\ndefaults: {probe: {timeout: 2.0, ttl: 60}}\nproviders:\n"
            "  llamacpp:\n    api: openai\n    kind: llamacpp\n    instances:\n"
            + "".join(f'      {n}: {{url: "{s.url}"}}\n' for n, s in real.items()),
            "utf-8",
        )
        gateway = GatewayHandle.start(fake_loop, path)
        yield Servers(real, fakes, gateway)
    finally:
        if gateway is not None:
            gateway.stop()
        for fake in fakes.values():
            fake.stop()
        for server in real.values():
            server.stop()


def _shape(value: Any) -> Any:
    """The structure of a JSON value: keys in order, element shapes, scalar types."""
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    return "number" if isinstance(value, int | float) else type(value).__name__


def test_embeddings_parity(servers: Servers) -> None:
    """Embeddings (and their 501 on a chat server) have the real server's shapes."""
    for encoding in ("float", "base64"):
        real, fake = servers.both(
            "embed",
            "/v1/embeddings",
            {"model": ALIAS, "input": ["alpha", "beta"], "encoding_format": encoding},
        )
        assert real.status == fake.status == 200
        assert _shape(fake.json()) == _shape(real.json())
        assert fake.json()["model"] == real.json()["model"] == ALIAS
    real, fake = servers.both("chat", "/v1/embeddings", {"model": ALIAS, "input": "alpha"})
    assert real.status == fake.status == 501
    assert fake.json() == real.json()


def test_completions_and_messages_parity(servers: Servers) -> None:
    """Text completions and Messages (whole, streamed, token counts) match the real shapes."""
    cases = [
        ("/v1/completions", {"model": ALIAS, "prompt": "def f(", "max_tokens": 4}),
        ("/v1/messages", {"model": ALIAS, "max_tokens": 4, "messages": HI}),
        ("/v1/messages/count_tokens", {"model": ALIAS, "messages": HI}),
    ]
    for path, body in cases:
        real, fake = servers.both("chat", path, body)
        assert real.status == fake.status == 200, (path, real.body)
        shape = _shape(fake.json())
        if path == "/v1/messages":  # the fake ends its text, the 4-token real one is cut
            assert real.json()["stop_reason"] == "max_tokens"
            shape = _shape({**fake.json(), "stop_reason": "max_tokens"})
        assert shape == _shape(real.json()), path
    for path, body in cases[:2]:
        real, fake = servers.both("chat", path, {**body, "stream": True})
        real_events, fake_events = sse_events(real.body), sse_events(fake.body)
        assert [n for n, _ in fake_events][:2] == [n for n, _ in real_events][:2]
        assert [n for n, _ in fake_events][-3:] == [n for n, _ in real_events][-3:]
        assert _shape(fake_events[0][1]) == _shape(real_events[0][1])
        last_real, last_fake = real_events[-1][1], fake_events[-1][1]
        assert [k for k, _ in _shape(last_fake)] == [k for k, _ in _shape(last_real)]


def test_every_client_lands_on_the_right_server(servers: Servers) -> None:
    """Through the gateway: chat, completions and messages land on the chat server;
    embeddings (after one not_supported, remembered) on the embeddings server."""
    url = servers.gateway.url
    with openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client:
        first = client.embeddings.with_raw_response.create(model=ALIAS, input=["alpha"])
        second = client.embeddings.with_raw_response.create(model=ALIAS, input=["beta"])
        text = client.completions.with_raw_response.create(model=ALIAS, prompt="x =", max_tokens=4)
        vectors = first.parse()
    with anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0) as claude:
        message = claude.messages.with_raw_response.create(model=ALIAS, max_tokens=4, messages=HI)  # type: ignore[arg-type]
        with claude.messages.stream(model=ALIAS, max_tokens=4, messages=HI) as stream:  # type: ignore[arg-type]
            final = stream.get_final_message()
        counted = claude.messages.count_tokens(model=ALIAS, messages=HI)  # type: ignore[arg-type]
    with ollama.Client(host=url) as local:
        embedded = local.embed(model=ALIAS, input=["alpha", "beta"])
        generated = local.generate(model=ALIAS, prompt="hi", options={"num_predict": 4})
        shown = local.show(ALIAS)
        loaded = {m.model for m in local.ps().models}
    assert [r.headers["X-Routed-To"] for r in (first, second, text, message)] == [
        "llamacpp:embed",
        "llamacpp:embed",
        "llamacpp:chat",
        "llamacpp:chat",
    ]
    assert len(vectors.data[0].embedding) > 100
    assert "passed through" in message.headers["X-Routing-Reason"]
    assert message.parse().type == "message" and final.stop_reason == "max_tokens"
    assert counted.input_tokens > 0
    assert len(embedded.embeddings) == 2 and generated.done
    assert shown.capabilities == ["completion"] and loaded == {ALIAS}
    status = json.loads(http("GET", url + "/status").body)
    unsupported = {row["instance"]: row["unsupported"] for row in status["instances"]}
    assert unsupported == {"llamacpp:chat": ["embedding"], "llamacpp:embed": []}
