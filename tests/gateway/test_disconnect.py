"""A client that goes away cancels the upstream request: the backend sees its socket close."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from gateway_support import HI, GatewayHandle, chat, config_text, wait_until

from fake_servers import FakeServerHandle

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]


def _chat_connection(fake: FakeServerHandle) -> Any:
    """The fake's server-side connection handling a chat request, or None.

    Reads aiohttp internals of the fake (its RequestHandler objects): the only way to see,
    from the backend's side, that the connection was closed.
    """

    def find() -> Any:
        runner = fake.server._runner
        assert runner is not None and runner.server is not None
        for handler in runner.server.connections:
            current = getattr(handler, "_current_request", None)
            if current is not None and current.path == "/v1/chat/completions":
                return handler
        return None

    return fake.loop.call(find)


@pytest.mark.parametrize("stream", [False, True])
def test_client_disconnect_cancels_upstream(
    fake_server: FakeFactory, gateway: GatewayFactory, stream: bool
) -> None:
    """Closing the client socket mid-request closes the gateway's connection to the backend."""
    fake = fake_server("llamacpp", ["a.gguf"])
    gw = gateway(config_text({"llamacpp:a": fake}))
    assert chat(gw.url, "a.gguf").status == 200  # probe now, while the fake is fast
    fake.set_fault("slow:5000")
    body = json.dumps({"model": "a.gguf", "messages": HI, "stream": stream}).encode()
    host, port = "127.0.0.1", gw.gateway.port
    with socket.create_connection((host, port), timeout=10) as client:
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        wait_until(lambda: _chat_connection(fake) is not None, what="the upstream request")
        upstream = _chat_connection(fake)
    # connection_lost() on the fake's side drops the handler's manager.
    wait_until(
        lambda: fake.loop.call(lambda: upstream._manager is None),
        what="the backend to see its connection closed",
    )
    wait_until(lambda: gw.gateway.pool.inflight() == 0, what="the gateway handler to end")
