"""The OpenAI door forwards bytes as they were written: the client's request body when it
already says what the backend is to get, and each streamed chunk's data line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from aiohttp import web
from gateway_support import GatewayHandle, Reply, chat, http

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
REPLY = {
    "id": "r1",
    "object": "chat.completion",
    "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
}
# No "object": the gateway fills it in, so it encodes the chunk itself.
NO_OBJECT = '{"id": "c2", "model": "wire-model", "choices": []}'
# One event in two data lines: a line of its own would break SSE framing, so re-encoded.
TWO_LINES = [
    '{"id": "c3", "object": "chat.completion.chunk",',
    ' "model": "wire-model", "choices": []}',
]


def _backend(events: list[list[str]], received: list[bytes] | None = None) -> web.Application:
    """An OpenAI-style server whose one model streams ``events`` (each: its data lines);
    ``received`` gets each chat request's body, byte for byte."""

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if received is not None:
            received.append(body)
        if not json.loads(body).get("stream"):
            return web.json_response(REPLY)
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


Backend = Callable[..., str]


@pytest.fixture
def backend(fake_loop: LoopThread) -> Iterator[Backend]:
    """Factory: serve ``events`` (and record bodies in ``received``) on 127.0.0.1, a free
    port; return its URL."""
    runners: list[web.AppRunner] = []

    def start(events: list[list[str]], received: list[bytes] | None = None) -> str:
        async def go() -> str:
            runner = web.AppRunner(_backend(events, received))
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
        "  lms:\n    api: openai\n    kind: lmstudio\n    instances:\n"
        f'      a: {{url: "{url}", aliases: {{coder: {MODEL}}}}}\n'
    )


def _data_lines(body: bytes) -> list[str]:
    return [line[len("data: ") :] for line in body.decode().split("\n") if line.startswith("data:")]


def test_chunks_are_forwarded_byte_for_byte(
    backend: Backend, gateway: Callable[..., GatewayHandle]
) -> None:
    """Each data line reaches the client as the backend wrote it, then [DONE]."""
    gw = gateway(_config(backend([[line] for line in AS_SENT])))
    reply = chat(gw.url, MODEL, stream=True)
    assert reply.status == 200, reply.body
    assert reply.routed_to == "lms:a"
    assert _data_lines(reply.body) == [*AS_SENT, "[DONE]"]


def test_chunks_it_completes_or_reframes_are_encoded_again(
    backend: Backend, gateway: Callable[..., GatewayHandle]
) -> None:
    """A chunk without ``object`` gets it; a two-line event becomes one valid line."""
    gw = gateway(_config(backend([[NO_OBJECT], TWO_LINES])))
    reply = chat(gw.url, MODEL, stream=True)
    assert reply.status == 200, reply.body
    first, second, done = _data_lines(reply.body)
    assert json.loads(first) == {**json.loads(NO_OBJECT), "object": "chat.completion.chunk"}
    assert json.loads(second) == json.loads("\n".join(TWO_LINES))
    assert done == "[DONE]"


def _post(url: str, body: bytes) -> Reply:
    return http("POST", url + "/v1/chat/completions", body)


# A body as a client may write it: its own spacing and key order, non-ASCII as UTF-8.
AS_WRITTEN = (
    b'{ "messages" : [ {"content": "h\xc3\xa9", "role": "user"} ],  "temperature": 0.5, '
    b'"model": "wire-model", "x_client": {"b": 1, "a": 2} }'
)


@pytest.mark.parametrize(
    "body",
    [
        AS_WRITTEN,
        AS_WRITTEN.replace(b'"temperature"', b'"stream": false, "temperature"'),
        AS_WRITTEN.replace(b'"temperature"', b'"stream": true, "temperature"'),
    ],
    ids=["no-stream-key", "stream-false", "stream-true"],
)
def test_request_bytes_reach_the_backend_as_sent(
    backend: Backend, gateway: Callable[..., GatewayHandle], body: bytes
) -> None:
    """A body naming the model it is sent for goes upstream byte for byte."""
    received: list[bytes] = []
    gw = gateway(_config(backend([[line] for line in AS_SENT], received)))
    reply = _post(gw.url, body)
    assert reply.status == 200, reply.body
    assert received == [body]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (AS_WRITTEN.replace(b'"wire-model"', b'"coder"'), "an alias: the id is sent"),
        (b'{"model": "other", ' + AS_WRITTEN[1:], "two model keys: the last one decides"),
        (AS_WRITTEN.replace(b"h\xc3\xa9", b"h\\u00e9"), "a \\u escape: a key could hide one"),
        (b"\xef\xbb\xbf" + AS_WRITTEN, "a byte order mark"),
        (AS_WRITTEN.replace(b'"x_client"', b'"_ollama"'), "a key the gateway keeps to itself"),
    ],
    ids=["alias", "duplicate-model", "escape", "bom", "private-key"],
)
def test_request_encoded_again_when_its_bytes_do_not_say_it(
    backend: Backend, gateway: Callable[..., GatewayHandle], body: bytes, why: str
) -> None:
    """The backend gets the routed model, once, in a body encoded by the gateway."""
    received: list[bytes] = []
    gw = gateway(_config(backend([], received)))
    reply = _post(gw.url, body)
    assert reply.status == 200, (why, reply.body)
    (sent,) = received
    assert sent != body, why
    assert sent.count(b'"model"') == 1, why
    upstream = json.loads(sent)
    assert upstream["model"] == MODEL, why
    assert upstream["stream"] is False, why
    assert "_ollama" not in upstream, why
    assert upstream["messages"] == [{"content": "hé", "role": "user"}], why
