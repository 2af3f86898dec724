"""Adding an API style is one module and one register() call: nothing else in routing changes.

The style below ("plaintext": a made-up server answering ``POST /say`` with text and listing
its models at ``GET /which``) lives entirely in this test module, as a user's own module
would.  Registered, it is accepted by config validation, probed, routed to, and served
through the gateway's OpenAI door, with no other module touched.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import routing.adapters
from routing._engine import Router
from routing._gateway_server import Gateway
from routing._operations import Operation
from routing.adapters import get_adapter, register
from routing.adapters._http import post_read
from routing.adapters._probe import Probed, check, get_json
from routing.config import Instance, parse_config
from routing.errors import BackendProtocolError, ConfigError


class PlaintextAdapter:
    """A whole API style: conversions, chat, stream, probe, headers, kinds, URL facts."""

    api = "plaintext"
    operations = frozenset({Operation.CHAT})
    kinds: Mapping[str, int | None] = MappingProxyType({"plainserver": 9999})
    url_suffix = ""
    strip_suffix = ""
    implicit_tag: str | None = None

    def headers(self, instance: Instance) -> dict[str, str]:
        """No credentials: a local toy server."""
        return {}

    async def probe(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        timeout: aiohttp.ClientTimeout,
        *,
        load: bool = False,
    ) -> Probed:
        """``GET /which`` lists the models, one per line."""
        status, body = await get_json(session, instance.url + "/which", {}, timeout)
        return Probed(tuple(check(status, body, "GET /which")))

    async def chat(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> dict[str, Any]:
        """One request, OpenAI-shaped reply."""
        return (await self.chat_raw(session, instance, model, request, timeout))[0]

    async def chat_raw(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> tuple[dict[str, Any], None]:
        """``POST /say`` with the last message's text; the reply text comes back as is."""
        said = str(request["messages"][-1].get("content", ""))
        raw = await post_read(
            session,
            instance.url + "/say",
            {"model": model, "text": said},
            key=instance.key,
            headers={},
            timeout=timeout,
        )
        text = raw.decode()
        if not text:
            raise BackendProtocolError("empty reply", instance=instance.key)
        return {
            "id": "plain-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
        }, None

    async def stream(
        self,
        session: aiohttp.ClientSession,
        instance: Instance,
        model: str,
        request: Mapping[str, Any],
        timeout: aiohttp.ClientTimeout,
    ) -> AsyncIterator[dict[str, Any]]:
        """The whole reply as one chunk, then a finish chunk."""
        reply, _ = await self.chat_raw(session, instance, model, request, timeout)
        text = reply["choices"][0]["message"]["content"]
        for delta, finish in (({"role": "assistant", "content": text}, None), ({}, "stop")):
            yield {
                "id": "plain-1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }


@pytest.fixture
def plaintext_style() -> Iterator[None]:
    """The style registered for one test, then removed again."""
    register(PlaintextAdapter())
    try:
        yield
    finally:
        del routing.adapters._REGISTRY["plaintext"]


async def _plain_server() -> web.AppRunner:
    async def which(request: web.Request) -> web.Response:
        return web.json_response(["echo-1"])

    async def say(request: web.Request) -> web.Response:
        body = await request.json()
        return web.Response(text=f"{body['model']} says {body['text']}")

    app = web.Application()
    app.router.add_get("/which", which)
    app.router.add_post("/say", say)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def _config(port: int) -> str:
    return (
        "version: 1\nproviders:\n  toy:\n    api: plaintext\n    kind: plainserver\n"
        f"    instances:\n      a: {{port: {port}}}\n"
    )


def test_unregistered_style_is_a_located_config_error() -> None:
    """Before registration a config naming the style is refused, located."""
    with pytest.raises(ConfigError) as info:
        parse_config(_config(9), environ={})
    paths = {issue.json_path for issue in info.value.issues}
    assert {"$.providers.toy.api", "$.providers.toy.kind"} <= paths


def test_registered_style_is_routed_and_served(plaintext_style: None) -> None:
    """Registered, the style validates, probes, routes and answers through the gateway."""
    assert get_adapter("plaintext").api == "plaintext"
    no_port = parse_config(
        "version: 1\nproviders:\n  toy:\n    api: plaintext\n"
        "    kind: plainserver\n    instances:\n"
        "      a: {url: 'http://127.0.0.1'}\n",
        environ={},
    )
    assert no_port.instances["toy:a"].url == "http://127.0.0.1:9999"  # the kind's port

    async def scenario() -> tuple[str, dict[str, Any], bytes]:
        server = await _plain_server()
        port = int(server.addresses[0][1])
        try:
            config = parse_config(_config(port), environ={})
            async with Router(config) as router:
                decision = await router.resolve(model="echo-1")
                reply = await router.chat([{"role": "user", "content": "hi"}], model="echo-1")
            gateway = await Gateway(config).start("127.0.0.1", 0)
            try:
                body = {
                    "model": "echo-1",
                    "stream": True,
                    "messages": [{"role": "user", "content": "yo"}],
                }
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(gateway.url + "/v1/chat/completions", json=body) as resp,
                ):
                    streamed = await resp.read()
            finally:
                await gateway.stop()
            return decision.instance, reply, streamed
        finally:
            await server.cleanup()

    instance, reply, streamed = asyncio.run(scenario())
    assert instance == "toy:a"
    assert reply["choices"][0]["message"]["content"] == "echo-1 says hi"
    events = [
        json.loads(line[6:])
        for line in streamed.decode().split("\n\n")
        if line.startswith("data: {")
    ]
    assert events[0]["choices"][0]["delta"]["content"] == "echo-1 says yo"
    assert streamed.rstrip().endswith(b"data: [DONE]")
