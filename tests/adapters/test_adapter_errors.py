"""Every fault of the fakes, and a killed backend, map into the error tree."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from adapter_support import (
    HI,
    KEY_ENV,
    KINDS,
    MODEL,
    chat,
    instance_for,
    run,
    start_kind,
    stream,
    text_of,
)
from adapter_support import timeout as client_timeout

from routing.adapters import get_adapter
from routing.errors import (
    BackendProtocolError,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    Reason,
)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_hang_is_timeout(fake_server: Any, kind: str, streaming: bool) -> None:
    """A hung backend raises BackendTimeout once the (short) deadline passes."""
    inst = instance_for(kind, start_kind(fake_server, kind, "hang").url)
    with pytest.raises(BackendTimeout) as info:
        (stream if streaming else chat)(inst, HI, 0.3)
    assert info.value.instance == f"{kind}:t"
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_loading_is_unavailable(fake_server: Any, kind: str, streaming: bool) -> None:
    """503 raises BackendUnavailable: reason loading for llama.cpp's unavailable_error body,
    overloaded for another server's 503 (busy: fail over, cool down)."""
    inst = instance_for(kind, start_kind(fake_server, kind, "loading").url)
    with pytest.raises(BackendUnavailable) as info:
        (stream if streaming else chat)(inst)
    assert info.value.status == 503
    typed = kind in ("llamacpp", "lmstudio", "openai")  # OpenAI-shaped error with its type
    assert info.value.reason == (Reason.LOADING if typed else Reason.OVERLOADED)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_error500_is_protocol_error(fake_server: Any, kind: str, streaming: bool) -> None:
    """A 500 raises BackendProtocolError carrying the status and the parsed body."""
    inst = instance_for(kind, start_kind(fake_server, kind, "error500").url)
    with pytest.raises(BackendProtocolError) as info:
        (stream if streaming else chat)(inst)
    assert info.value.status == 500
    assert info.value.body


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_garbage_is_protocol_error(fake_server: Any, kind: str, streaming: bool) -> None:
    """A reply that is not JSON raises BackendProtocolError from the JSON error."""
    inst = instance_for(kind, start_kind(fake_server, kind, "garbage").url)
    with pytest.raises(BackendProtocolError) as info:
        (stream if streaming else chat)(inst)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("kind", KINDS)
def test_drop_before_reply_is_unavailable(fake_server: Any, kind: str) -> None:
    """A connection closed before any reply raises BackendUnavailable."""
    inst = instance_for(kind, start_kind(fake_server, kind, "drop").url)
    with pytest.raises(BackendUnavailable):
        chat(inst)


@pytest.mark.parametrize("kind", KINDS)
def test_drop_mid_stream_raises_after_chunks(fake_server: Any, kind: str) -> None:
    """A stream cut mid-way yields its first chunks, then raises BackendProtocolError."""
    inst = instance_for(kind, start_kind(fake_server, kind, "drop").url)
    received: list[dict[str, Any]] = []

    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            async for chunk in get_adapter(inst.api).stream(
                session, inst, MODEL[kind], HI, client_timeout()
            ):
                received.append(chunk)

    with pytest.raises(BackendProtocolError):
        run(go())
    assert received


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_slow_answers_later(fake_server: Any, kind: str, streaming: bool) -> None:
    """A slow backend still answers completely."""
    fake = start_kind(fake_server, kind, "slow:20")
    inst = instance_for(kind, fake.url)
    expected = f"I am {MODEL[kind]} on {kind} port {fake.port}"
    if streaming:
        assert text_of(stream(inst)) == expected
    else:
        assert chat(inst)["choices"][0]["message"]["content"] == expected


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_wrong_model_passes_through(fake_server: Any, kind: str, streaming: bool) -> None:
    """The adapter reports the model the backend named; verification is failover's job."""
    inst = instance_for(kind, start_kind(fake_server, kind, "wrong-model").url)
    if streaming:
        assert {c["model"] for c in stream(inst)} == {f"wrong-{MODEL[kind]}"}
    else:
        assert chat(inst)["model"] == f"wrong-{MODEL[kind]}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_killed_backend_is_unavailable(fake_server: Any, kind: str, streaming: bool) -> None:
    """A stopped backend (connection refused) raises BackendUnavailable."""
    fake = start_kind(fake_server, kind)
    inst = instance_for(kind, fake.url)
    fake.stop()
    with pytest.raises(BackendUnavailable) as info:
        (stream if streaming else chat)(inst)
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectionError)


@pytest.mark.parametrize("kind", ["lmstudio", "openai", "ollama", "anthropic"])
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_unknown_model_is_rejected(fake_server: Any, kind: str, streaming: bool) -> None:
    """A 404 for an unknown model raises BackendRejected with the status and body."""
    inst = instance_for(kind, start_kind(fake_server, kind).url)
    with pytest.raises(BackendRejected) as info:
        (stream if streaming else chat)(inst, {**HI, "model": "no-such-model"})
    assert info.value.status == 404
    assert info.value.body


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_missing_key_is_rejected(
    fake_server: Any, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a key a hosted API answers 401: reason unauthorized, the upstream body dropped."""
    inst = instance_for(kind, start_kind(fake_server, kind).url)
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(BackendUnavailable) as info:
        chat(inst)
    assert info.value.reason is Reason.UNAUTHORIZED
    assert info.value.body is None
    assert info.value.status == 401
