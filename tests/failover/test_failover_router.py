"""Failover through the real Router over two fakes of each API style.

Each test says whether failover must happen and asserts which instance answered.
"""

from __future__ import annotations

from typing import Any

import pytest
from failover_support import (
    HI,
    KEY_ENV,
    MODEL,
    answered_port,
    config_for,
    run,
    stream_text,
)

from routing._engine import Router
from routing._failover import Completion
from routing._failover_stream import StreamHandle
from routing.errors import BackendProtocolError, BackendUnavailable, InvalidRequest

KINDS = ("llamacpp", "ollama", "anthropic")
# Faults after which the request must move to the second instance.
FAILOVER_FAULTS = ("hang", "loading", "error500", "garbage", "killed")
CHAT_PATHS = {"/v1/chat/completions", "/v1/messages", "/api/chat"}


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test")


def _pair(fake_server: Any, kind: str) -> tuple[Any, Any]:
    return fake_server(kind, [MODEL[kind]]), fake_server(kind, [MODEL[kind]])


def _break(fake: Any, fault: str) -> None:
    if fault == "killed":
        fake.stop()
    else:
        fake.set_fault(fault)


async def _complete(
    router: Router, kind: str, fault: str | None, first: Any, **request: Any
) -> Completion:
    async with router:
        await router.resolve(model=MODEL[kind])  # both READY and cached before the fault
        if fault:
            _break(first, fault)
        return await router.complete({"messages": HI, "model": MODEL[kind], **request})


async def _stream(
    router: Router, kind: str, fault: str | None, first: Any
) -> tuple[StreamHandle, list[dict[str, Any]]]:
    async with router:
        await router.resolve(model=MODEL[kind])
        if fault:
            _break(first, fault)
        handle = await router.open_stream({"messages": HI, "model": MODEL[kind], "stream": True})
        async with handle:
            return handle, [chunk async for chunk in handle]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", FAILOVER_FAULTS)
def test_chat_fails_over(fake_server: Any, kind: str, fault: str) -> None:
    """Failover: a broken first instance hands the request to the second one."""
    a, b = _pair(fake_server, kind)
    router = Router(config_for(kind, [a.port, b.port], attempt_timeout=0.5))
    done = run(_complete(router, kind, fault, a))
    assert answered_port(done.reply["choices"][0]["message"]["content"]) == b.port
    assert done.decision.instance == f"{kind}:i1"
    assert done.failovers == 1
    assert [key for key, _ in done.attempts] == [f"{kind}:i0", f"{kind}:i1"]
    assert done.attempts[1][1] is None
    assert sum(n for (key, _), n in router.metrics.failovers.items() if key == f"{kind}:i0") == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", FAILOVER_FAULTS)
def test_stream_fails_over_before_first_chunk(fake_server: Any, kind: str, fault: str) -> None:
    """Failover: a stream whose first instance fails before any chunk comes from the second."""
    a, b = _pair(fake_server, kind)
    router = Router(config_for(kind, [a.port, b.port], attempt_timeout=0.5))
    handle, chunks = run(_stream(router, kind, fault, a))
    assert answered_port(stream_text(chunks)) == b.port
    assert handle.decision.instance == f"{kind}:i1"
    assert handle.failovers == 1


@pytest.mark.parametrize("kind", KINDS)
def test_chat_drop_fails_over(fake_server: Any, kind: str) -> None:
    """Failover: a connection dropped before the reply moves the request on."""
    a, b = _pair(fake_server, kind)
    router = Router(config_for(kind, [a.port, b.port]))
    done = run(_complete(router, kind, "drop", a))
    assert answered_port(done.reply["choices"][0]["message"]["content"]) == b.port
    assert done.failovers == 1


@pytest.mark.parametrize("kind", KINDS)
def test_mid_stream_drop_is_not_retried(fake_server: Any, kind: str) -> None:
    """No failover: once chunks reached the caller, a drop ends the stream with an error."""
    a, b = _pair(fake_server, kind)
    router = Router(config_for(kind, [a.port, b.port]))
    received: list[dict[str, Any]] = []

    async def go() -> None:
        async with router:
            await router.resolve(model=MODEL[kind])
            a.set_fault("drop")
            async for chunk in router.stream(HI, model=MODEL[kind]):
                received.append(chunk)

    with pytest.raises(BackendProtocolError, match="inside the reply"):
        run(go())
    assert received
    assert not [r for r in b.requests if r["path"] in CHAT_PATHS]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_slow_is_answered_without_failover(fake_server: Any, kind: str, streaming: bool) -> None:
    """No failover: a slow instance within its deadline answers itself."""
    a, b = _pair(fake_server, kind)
    router = Router(config_for(kind, [a.port, b.port]))
    if streaming:
        handle, chunks = run(_stream(router, kind, "slow:30", a))
        assert answered_port(stream_text(chunks)) == a.port
        assert handle.failovers == 0
    else:
        done = run(_complete(router, kind, "slow:30", a))
        assert answered_port(done.reply["choices"][0]["message"]["content"]) == a.port
        assert done.failovers == 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_wrong_model_is_recorded(
    fake_server: Any, kind: str, streaming: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """No failover: a reply naming another model passes, with a warning, metric and note."""
    a, b = _pair(fake_server, kind)
    router = Router(config_for(kind, [a.port, b.port]))
    with caplog.at_level("WARNING", logger="routing"):
        if streaming:
            handle, _ = run(_stream(router, kind, "wrong-model", a))
            decision = handle.decision
        else:
            done = run(_complete(router, kind, "wrong-model", a))
            decision = done.decision
            assert done.reply["model"] == f"wrong-{MODEL[kind]}"
    assert decision.instance == f"{kind}:i0"
    assert decision.warnings and f"wrong-{MODEL[kind]}" in decision.warnings[0]
    assert router.metrics.wrong_model[(f"{kind}:i0", MODEL[kind], f"wrong-{MODEL[kind]}")] == 1
    assert any("answered as model" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kind", ["llamacpp", "anthropic"])
def test_malformed_request_reaches_no_instance(fake_server: Any, kind: str) -> None:
    """A malformed request is the caller's error: InvalidRequest before any instance is tried.

    (A real 4xx passed through without failover: tests/failover/test_invalid_requests.py.)
    """
    a, b = _pair(fake_server, kind)
    router = Router(config_for(kind, [a.port, b.port]))

    async def go() -> None:
        async with router:
            await router.complete({"messages": "not a list", "model": MODEL[kind]})

    with pytest.raises(InvalidRequest) as info:
        run(go())
    assert info.value.param == "messages"
    assert not [r for r in a.requests + b.requests if r["path"] in CHAT_PATHS]


def test_all_instances_failing_raises_last_error(fake_server: Any) -> None:
    """Every candidate loading: the last BackendUnavailable is raised after both tried."""
    a, b = _pair(fake_server, "llamacpp")
    router = Router(config_for("llamacpp", [a.port, b.port]))

    async def go() -> None:
        async with router:
            await router.resolve(model=MODEL["llamacpp"])
            a.set_fault("loading")
            b.set_fault("loading")
            await router.chat(HI, model=MODEL["llamacpp"])

    with pytest.raises(BackendUnavailable) as info:
        run(go())
    assert info.value.instance == "llamacpp:i1"


def test_retry_budget_bounds_attempts(fake_server: Any) -> None:
    """With retries: 0 a failing first instance is not failed over."""
    a, b = _pair(fake_server, "llamacpp")
    router = Router(config_for("llamacpp", [a.port, b.port], retries=0))

    async def go() -> None:
        async with router:
            await router.resolve(model=MODEL["llamacpp"])
            a.set_fault("error500")
            await router.chat(HI, model=MODEL["llamacpp"])

    with pytest.raises(BackendProtocolError):
        run(go())
    assert not [r for r in b.requests if r["path"] == "/v1/chat/completions"]


def test_failed_instance_is_skipped_next_time(fake_server: Any) -> None:
    """After a failover the failed instance is marked, so the next request goes to b directly."""
    a, b = _pair(fake_server, "llamacpp")
    router = Router(config_for("llamacpp", [a.port, b.port]))

    async def go() -> tuple[Completion, Completion]:
        async with router:
            await router.resolve(model=MODEL["llamacpp"])
            a.set_fault("error500")
            first = await router.complete({"messages": HI, "model": MODEL["llamacpp"]})
            second = await router.complete({"messages": HI, "model": MODEL["llamacpp"]})
            return first, second

    first, second = run(go())
    assert first.failovers == 1
    assert second.failovers == 0 and second.decision.instance == "llamacpp:i1"
