"""Faults behave the same way on every kind, on chat and on health/model-list endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import httpx
import pytest
from fakes_support import (
    CHAT,
    HEALTH_PATH,
    KEY_HEADERS,
    MODEL,
    chat,
    error_message,
    stream_events,
    wait_until,
)

from fake_servers import KINDS, FakeServer, start_fake
from fake_servers._core import FakeState
from fake_servers.pytest_plugin import FakeServerFactory


@pytest.mark.parametrize("kind", KINDS)
def test_hang_never_answers(fake_server: FakeServerFactory, kind: str) -> None:
    """hang: chat and health requests get no answer (client timeout)."""
    fake = fake_server(kind, fault="hang")
    with httpx.Client(timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            chat(client, fake.url, kind, MODEL[kind])
        with pytest.raises(httpx.ReadTimeout):
            client.get(fake.url + HEALTH_PATH[kind], headers=KEY_HEADERS[kind])


def test_hang_does_not_block_stop(fake_server: FakeServerFactory) -> None:
    """stop() with a hung request in flight returns promptly and drops the connection."""
    fake = fake_server("llamacpp", fault="hang")
    with ThreadPoolExecutor(1) as pool, httpx.Client(timeout=30) as client:
        pending = pool.submit(chat, client, fake.url, "llamacpp", "x")
        wait_until(lambda: len(fake.requests) == 1)
        started = time.monotonic()
        fake.stop()
        stop_seconds = time.monotonic() - started
        with pytest.raises(httpx.TransportError):
            pending.result(timeout=10)
    assert stop_seconds < 5


@pytest.mark.parametrize("kind", KINDS)
def test_error500(fake_server: FakeServerFactory, kind: str) -> None:
    """error500: chat and health answer 500 in the kind's error shape."""
    fake = fake_server(kind, fault="error500")
    with httpx.Client(timeout=5) as client:
        for response in (
            chat(client, fake.url, kind, MODEL[kind]),
            client.get(fake.url + HEALTH_PATH[kind], headers=KEY_HEADERS[kind]),
        ):
            assert response.status_code == 500
            assert error_message(kind, response.json())


@pytest.mark.parametrize("kind", KINDS)
def test_loading(fake_server: FakeServerFactory, kind: str) -> None:
    """loading: chat and health answer 503 in the kind's error shape."""
    fake = fake_server(kind, fault="loading")
    with httpx.Client(timeout=5) as client:
        for response in (
            chat(client, fake.url, kind, MODEL[kind]),
            client.get(fake.url + HEALTH_PATH[kind], headers=KEY_HEADERS[kind]),
        ):
            assert response.status_code == 503
            assert error_message(kind, response.json())
        fake.set_fault("none")
        assert chat(client, fake.url, kind, MODEL[kind]).status_code == 200


@pytest.mark.parametrize("kind", KINDS)
def test_garbage(fake_server: FakeServerFactory, kind: str) -> None:
    """garbage: 200 with a non-JSON body, and streams of non-JSON lines."""
    fake = fake_server(kind, fault="garbage")
    with httpx.Client(timeout=5) as client:
        plain = chat(client, fake.url, kind, MODEL[kind])
        health = client.get(fake.url + HEALTH_PATH[kind], headers=KEY_HEADERS[kind])
        streamed = chat(client, fake.url, kind, MODEL[kind], stream=True)
    for response in (plain, health, streamed):
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            response.json()
    with pytest.raises(json.JSONDecodeError):
        stream_events(kind, streamed.text)


@pytest.mark.parametrize("kind", KINDS)
def test_drop(fake_server: FakeServerFactory, kind: str) -> None:
    """drop: non-stream gets no response; a stream is cut off after some chunks."""
    fake = fake_server(kind, fault="drop")
    case = CHAT[kind]
    received: list[bytes] = []
    with httpx.Client(timeout=5) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            chat(client, fake.url, kind, MODEL[kind])
        with (
            pytest.raises(httpx.RemoteProtocolError),
            client.stream(
                "POST",
                fake.url + case.path,
                json=case.body(MODEL[kind], True),
                headers=KEY_HEADERS[kind],
            ) as response,
        ):
            received.extend(response.iter_bytes())
        health = client.get(fake.url + HEALTH_PATH[kind], headers=KEY_HEADERS[kind])
    assert received, "some chunks arrive before the drop"
    assert b"[DONE]" not in b"".join(received)
    assert health.status_code == 200


@pytest.mark.parametrize("kind", KINDS)
def test_slow(fake_server: FakeServerFactory, kind: str) -> None:
    """slow:MS delays every response by at least MS, and each stream chunk too."""
    fake = fake_server(kind, fault="slow:40")
    with httpx.Client(timeout=5) as client:
        started = time.monotonic()
        assert chat(client, fake.url, kind, MODEL[kind]).status_code == 200
        single = time.monotonic() - started
        started = time.monotonic()
        streamed = chat(client, fake.url, kind, MODEL[kind], stream=True)
        whole_stream = time.monotonic() - started
    assert single >= 0.04
    events = stream_events(kind, streamed.text)
    assert whole_stream >= 0.04 * len(events)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_model(fake_server: FakeServerFactory, kind: str) -> None:
    """wrong-model: answers normally but names another model in `model` and the text."""
    fake = fake_server(kind, fault="wrong-model")
    with httpx.Client(timeout=5) as client:
        body = chat(client, fake.url, kind, MODEL[kind]).json()
    text = CHAT[kind].text(body)
    assert body["model"] != MODEL[kind]
    assert text == f"I am {body['model']} on {kind} port {fake.port}"


def test_fault_changed_over_http(fake_server: FakeServerFactory) -> None:
    """POST /_fake/fault switches the fault at run time; GET /_fake/state shows it."""
    fake = fake_server("llamacpp")
    with httpx.Client(timeout=5) as client:
        changed = client.post(fake.url + "/_fake/fault", json={"fault": "error500"})
        assert changed.json()["fault"] == "error500"
        assert client.get(fake.url + "/health").status_code == 500
        state = client.get(fake.url + "/_fake/state").json()
        rejected = client.post(fake.url + "/_fake/fault", json={"fault": "explode"})
        client.post(fake.url + "/_fake/fault", json={"fault": "slow:5"})
        assert client.get(fake.url + "/health").status_code == 200
    assert state == {
        "kind": "llamacpp",
        "port": fake.port,
        "models": ["model.gguf"],
        "fault": "error500",
        "loading": False,
        "disconnects": 0,
        "tool_calls": 0,
        "redirected_hits": 0,
        "router_mode": False,
        "loaded": ["model.gguf"],
        "loads": 0,
        "busy": 0,
        "slots": 4,
        "held": False,
    }
    assert rejected.status_code == 400


def test_request_log(fake_server: FakeServerFactory) -> None:
    """The request log keeps method, path, headers (keys included) and JSON body."""
    fake = fake_server("openai")
    with httpx.Client(timeout=5) as client:
        chat(client, fake.url, "openai", "gpt-4o-mini")
        client.get(fake.url + "/v1/models", headers={"Authorization": "Bearer sk-2"})
        logged = client.get(fake.url + "/_fake/requests").json()
        assert logged == fake.requests
        first, second = logged
        assert first["method"] == "POST"
        assert first["path"] == "/v1/chat/completions"
        assert first["headers"]["Authorization"] == "Bearer sk-test"
        assert first["json"]["model"] == "gpt-4o-mini"
        assert isinstance(first["time"], float)
        assert second["json"] is None
        assert client.delete(fake.url + "/_fake/requests").status_code == 200
        assert client.get(fake.url + "/_fake/requests").json() == []


def test_check_reraises_handler_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception inside a handler becomes a 500 and check() re-raises it (async API)."""

    def broken(self: FakeState, model: str) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(FakeState, "reply_text", broken)

    async def scenario() -> int:
        fake = await start_fake("lmstudio")
        try:
            async with aiohttp.ClientSession() as session:
                body = CHAT["lmstudio"].body("qwen2.5-7b-instruct", False)
                async with session.post(fake.url + "/v1/chat/completions", json=body) as resp:
                    status = resp.status
            with pytest.raises(RuntimeError, match="boom"):
                fake.check()
            fake.check()  # errors are reported once
            return status
        finally:
            await fake.stop()

    assert asyncio.run(scenario()) == 500


def test_async_context_manager_and_restart() -> None:
    """`async with FakeServer(...)` serves, and a restart reuses the same port."""

    async def scenario() -> tuple[int, int, int]:
        fake = FakeServer("anthropic", ["claude-x"])
        async with fake, aiohttp.ClientSession() as session:
            first_port = fake.port
            headers = KEY_HEADERS["anthropic"]
            async with session.get(fake.url + "/v1/models", headers=headers) as resp:
                status = resp.status
        assert not fake.running
        async with fake:
            second_port = fake.port
        return status, first_port, second_port

    status, first_port, second_port = asyncio.run(scenario())
    assert status == 200
    assert first_port == second_port != 0


@pytest.mark.parametrize("kind", KINDS)
def test_client_leaving_mid_stream_is_not_an_error(
    fake_server: FakeServerFactory, kind: str
) -> None:
    """A client that stops reading a stream is counted as a disconnect, not a handler error."""
    fake = fake_server(kind, fault="slow:20")
    case = CHAT[kind]
    with (
        httpx.Client(timeout=5) as client,
        client.stream(
            "POST",
            fake.url + case.path,
            json=case.body(MODEL[kind], True),
            headers=KEY_HEADERS[kind],
        ) as response,
    ):
        next(response.iter_bytes())
    with httpx.Client(timeout=5) as client:
        wait_until(lambda: client.get(fake.url + "/_fake/state").json()["disconnects"] == 1)
    fake.check()
