"""OpenAI streams pass through as the backend wrote them: each data line's bytes, unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from aiohttp import web
from gateway_support import GatewayHandle, chat

from fake_servers import LoopThread

MODEL = "wire-model"

# As a backend may write them: spaces after separators, its own key order, non-ASCII
# kept, an escaped solidus; none is how the gateway's own encoder would write them.
AS_SENT = [
    '{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "wire-model", '
    '"choices": [{"index": 0, "delta": {"role": "assistant", "content": "h\\u00e9 \\/"}, '
    '"finish_reason": null}], "x_backend": {"b": 2, "a": 1}}',
    '{"choices":[{"finish_reason":"stop","index":0,"delta":{"content":"é"}}],'
    '"object":"chat.completion.chunk","model":"wire-model","id":"c1","created":1}',
]
# No "object": the gateway fills it in, so it encodes the chunk itself.
NO_OBJECT = '{"id": "c2", "model": "wire-model", "choices": []}'
# One event in two data lines: a line of its own would break SSE framing, so re-encoded.
TWO_LINES = [
    '{"id": "c3", "object": "chat.completion.chunk",',
    ' "model": "wire-model", "choices": []}',
]


def _backend(events: list[list[str]]) -> web.Application:
    """An OpenAI-style server whose one model streams ``events`` (each: its data lines)."""

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def completions(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for lines in events:
            await resp.write("".join(f"data: {line}\n" for line in lines).encode() + b"\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", completions)
    return app


@pytest.fixture
def backend(fake_loop: LoopThread) -> Iterator[Callable[[list[list[str]]], str]]:
    """Factory: serve ``events`` on 127.0.0.1 (a free port); return its URL."""
    runners: list[web.AppRunner] = []

    def start(events: list[list[str]]) -> str:
        async def go() -> str:
            runner = web.AppRunner(_backend(events))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            runners.append(runner)
            return f"http://127.0.0.1:{runner.addresses[0][1]}"

        return fake_loop.run(go())

    yield start
    for runner in runners:
        fake_loop.run(runner.cleanup())


def _config(url: str) -> str:
    return (
        "version: 1\ndefaults:\n  probe: {timeout: 1.0, ttl: 30}\nproviders:\n"
        f'  lms:\n    api: openai\n    kind: lmstudio\n    instances:\n      a: {{url: "{url}"}}\n'
    )


def _data_lines(body: bytes) -> list[str]:
    return [line[len("data: ") :] for line in body.decode().split("\n") if line.startswith("data:")]


def test_chunks_are_forwarded_byte_for_byte(
    backend: Callable[[list[list[str]]], str], gateway: Callable[..., GatewayHandle]
) -> None:
    """Each data line reaches the client as the backend wrote it, then [DONE]."""
    gw = gateway(_config(backend([[line] for line in AS_SENT])))
    reply = chat(gw.url, MODEL, stream=True)
    assert reply.status == 200, reply.body
    assert reply.routed_to == "lms:a"
    assert _data_lines(reply.body) == [*AS_SENT, "[DONE]"]


def test_chunks_it_completes_or_reframes_are_encoded_again(
    backend: Callable[[list[list[str]]], str], gateway: Callable[..., GatewayHandle]
) -> None:
    """A chunk without ``object`` gets it; a two-line event becomes one valid line."""
    gw = gateway(_config(backend([[NO_OBJECT], TWO_LINES])))
    reply = chat(gw.url, MODEL, stream=True)
    assert reply.status == 200, reply.body
    first, second, done = _data_lines(reply.body)
    assert json.loads(first) == {**json.loads(NO_OBJECT), "object": "chat.completion.chunk"}
    assert json.loads(second) == json.loads("\n".join(TWO_LINES))
    assert done == "[DONE]"
