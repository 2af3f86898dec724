"""The engine acts on ``error.reason``: breaker streaks, cooldowns, crashes, kept model lists."""

from __future__ import annotations

import logging

import pytest
from support import FakeClock, config, provider, run

from fake_servers import start_fake
from routing import _engine as engine_module
from routing._decision import State
from routing._engine import Router
from routing._health import Breaker
from routing.adapters._http import classify_status, retry_after_seconds, sent_secrets
from routing.config import BreakerSettings
from routing.errors import (
    BackendError,
    BackendProtocolError,
    BackendUnavailable,
    NoRouteError,
    Reason,
)


def test_breaker_opens_once_per_streak_under_concurrent_failures() -> None:
    """Eight failures reported together open the breaker once, at the base backoff."""
    b = Breaker(BreakerSettings(failures=3, backoff=2.0, max_backoff=30.0))
    for _ in range(8):
        b.failure(100.0)
    assert b.state == "open" and b.backoff == 2.0 and b.open_until == 102.0
    assert b.allows_probe(102.0)  # back after 2 s, not 30
    for _ in range(8):  # the half-open probe and seven requests fail together
        b.failure(102.0)
    assert b.backoff == 4.0 and b.open_until == 106.0


@pytest.mark.parametrize(
    ("status", "body", "retry", "reason"),
    [
        (
            503,
            {"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}},
            None,
            Reason.LOADING,
        ),
        (503, {"error": "server busy, please try again"}, None, Reason.OVERLOADED),
        (429, {"error": {"message": "slow down"}}, 2.0, Reason.OVERLOADED),
        (529, {"type": "error", "error": {"type": "overloaded_error"}}, None, Reason.OVERLOADED),
        (
            401,
            {"error": {"message": "Incorrect API key provided: sk-x"}},
            None,
            Reason.UNAUTHORIZED,
        ),
        (403, "forbidden", None, Reason.UNAUTHORIZED),
        (501, {"error": {"code": 501, "type": "not_supported_error"}}, None, Reason.NOT_SUPPORTED),
        (
            404,
            {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}},
            None,
            Reason.NOT_SUPPORTED,
        ),
        (404, "404 page not found", None, Reason.NOT_SUPPORTED),
        (
            404,
            {"error": {"message": "model x not found", "code": "model_not_found"}},
            None,
            Reason.REJECTED,
        ),
        (404, {"error": "model 'x' not found"}, None, Reason.REJECTED),
        (
            404,
            {"type": "error", "error": {"type": "not_found_error", "message": "model: x"}},
            None,
            Reason.REJECTED,
        ),
        (400, {"error": {"message": "bad"}}, None, Reason.REJECTED),
        (500, {"error": {"message": "template error"}}, None, Reason.SERVER_ERROR),
        (502, "bad gateway", None, Reason.SERVER_ERROR),
        (307, None, None, Reason.PROTOCOL),
    ],
)
def test_status_classification(
    status: int, body: object, retry: float | None, reason: Reason
) -> None:
    """Every HTTP error answer gets its reason from status and body structure, never text."""
    assert classify_status(status, body, retry) is reason


def test_retry_after_and_secrets_parsing() -> None:
    """Retry-After in seconds or as a date, capped; credentials found in every header form."""
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("nan") is None and retry_after_seconds("junk") is None
    assert retry_after_seconds("1e9") == 3600.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    found = sent_secrets(
        {
            "Authorization": "Bearer sk-abc123",
            "x-api-key": "ak-999999",
            "Content-Type": "application/json",
        }
    )
    assert set(found) == {"Bearer sk-abc123", "sk-abc123", "ak-999999"}
    assert found[0] == "Bearer sk-abc123"  # longest first


def _two(clock: FakeClock, a: int, b: int) -> Router:
    return Router(config(provider("llamacpp", "openai", a=a, b=b)), clock=clock)


def test_overloaded_cools_down_for_retry_after_then_comes_back() -> None:
    """A 429 takes the instance out for retry_after seconds (injected clock), no breaker count."""

    async def scenario() -> None:
        a, b = await start_fake("llamacpp", ["m.gguf"]), await start_fake("llamacpp", ["m.gguf"])
        clock = FakeClock()
        try:
            async with _two(clock, a.port, b.port) as router:
                assert (await router.resolve(model="m.gguf")).instance == "llamacpp:a"
                router.report_failure(
                    "llamacpp:a",
                    BackendUnavailable(
                        "HTTP 429", instance="llamacpp:a", reason=Reason.OVERLOADED, retry_after=4.0
                    ),
                )
                d = await router.resolve(model="m.gguf")
                assert d.instance == "llamacpp:b"
                assert "cooling down for 4.0s" in d.trace[0].why
                router.report_failure(
                    "llamacpp:b",
                    BackendUnavailable("HTTP 429", instance="llamacpp:b", reason=Reason.OVERLOADED),
                )
                with pytest.raises(BackendUnavailable) as info:
                    await router.resolve(model="m.gguf")
                assert info.value.reason is Reason.OVERLOADED
                assert info.value.retry_after == 1.0  # b: the default cooldown, the shorter
                clock.advance(1.5)
                assert (await router.resolve(model="m.gguf")).instance == "llamacpp:b"
                clock.advance(3.0)
                assert (await router.resolve(model="m.gguf")).instance == "llamacpp:a"
                assert router.status()[0]["breaker"] == "closed"
        finally:
            await a.stop()
            await b.stop()

    run(scenario())


def test_server_error_alone_does_not_take_an_instance_out() -> None:
    """A request's server_error starts a probe; READY from it keeps the instance in."""

    async def scenario() -> None:
        fake = await start_fake("llamacpp", ["m.gguf"])
        try:
            async with Router(config(provider("llamacpp", "openai", a=fake.port))) as router:
                await router.resolve(model="m.gguf")
                probes = len(fake.requests)
                router.report_failure(
                    "llamacpp:a",
                    BackendProtocolError(
                        "HTTP 500", instance="llamacpp:a", status=500, reason=Reason.SERVER_ERROR
                    ),
                )
                assert router.status()[0]["state"] == State.READY
                await router.refresh(["llamacpp:a"])  # joins the probe the failure started
                assert len(fake.requests) > probes
                assert (await router.resolve(model="m.gguf")).instance == "llamacpp:a"
        finally:
            await fake.stop()

    run(scenario())


def test_crashed_probe_is_reported_as_a_crash(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A probe that raises is UNHEALTHY 'probe crashed: X', logged in one line, not a timeout."""

    async def boom(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(engine_module, "probe_instance", boom)

    async def scenario() -> None:
        async with Router(config(provider("llamacpp", "openai", a=9))) as router:
            with pytest.raises(NoRouteError):
                await router.resolve(model="m.gguf")
            row = router.status()[0]
            assert row["state"] == State.UNHEALTHY
            assert row["detail"] == "probe crashed: RecursionError"

    with caplog.at_level(logging.ERROR, logger="routing"):
        run(scenario())
    crashes = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert len(crashes) == 1 and crashes[0].exc_info is None


def test_deeply_nested_model_list_is_unhealthy_not_a_crash() -> None:
    """A hostile model list nested 100,000 deep is 'not JSON' (UNHEALTHY), never a crash."""

    async def scenario() -> None:
        from aiohttp import web

        async def models(request: web.Request) -> web.Response:
            return web.Response(
                body=b"[" * 100_000 + b"]" * 100_000, content_type="application/json"
            )

        app = web.Application()
        app.router.add_get("/v1/models", models)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = int(runner.addresses[0][1])
        try:
            async with Router(config(provider("lmstudio", "openai", a=port))) as router:
                with pytest.raises(NoRouteError):
                    await router.resolve(model="m")
                row = router.status()[0]
                assert row["state"] == State.UNHEALTHY
                assert "not JSON" in row["detail"]
        finally:
            await runner.cleanup()

    run(scenario())


def test_unauthorized_is_misconfigured_until_reload() -> None:
    """unauthorized: MISCONFIGURED, skipped, and not probed again however old the result."""

    async def scenario() -> None:
        fake = await start_fake("llamacpp", ["m.gguf"])
        clock = FakeClock()
        try:
            async with Router(
                config(provider("llamacpp", "openai", a=fake.port)), clock=clock
            ) as router:
                await router.resolve(model="m.gguf")
                router.report_failure(
                    "llamacpp:a",
                    BackendUnavailable(
                        "HTTP 401", instance="llamacpp:a", status=401, reason=Reason.UNAUTHORIZED
                    ),
                )
                seen = len(fake.requests)
                for _ in range(3):
                    clock.advance(3600)
                    with pytest.raises(NoRouteError) as info:
                        await router.resolve(model="m.gguf")
                    assert info.value.candidates[0].state == State.MISCONFIGURED
                    assert info.value.unavailable  # 503: it served the model when last seen
                assert len(fake.requests) == seen
        finally:
            await fake.stop()

    run(scenario())


def test_secrets_are_redacted_from_errors_and_probe_details(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Router.secrets holds every key it sends; BackendError.redact removes them everywhere."""
    monkeypatch.setenv("T_KEY", "sk-live-0123456789")
    router = Router(
        config(
            "  openai:\n    api: openai\n    instances:\n"
            "      default: {url: 'http://127.0.0.1:9/v1', api_key_env: T_KEY}\n"
        )
    )
    assert router.secrets == ("Bearer sk-live-0123456789", "sk-live-0123456789")
    error: BackendError = BackendProtocolError(
        "HTTP 500: bad key Bearer sk-live-0123456789",
        instance="openai:default",
        body={"error": {"message": ["sk-live-0123456789"]}},
    )
    error.redact(router.secrets)
    assert "sk-live" not in str(error) and "sk-live" not in repr(error.body)
    assert str(error) == "openai:default: HTTP 500: bad key [redacted]"


def test_error_answers_are_server_errors_and_garbage_is_protocol() -> None:
    """An error object the server sends (200 body, stream event) is that request's
    server_error; bytes that are not the protocol are a protocol failure."""
    from routing.adapters import anthropic, ollama, openai

    with pytest.raises(BackendError) as info:
        openai.chunk_from_wire('{"error": {"message": "context full"}}', "l:a")
    assert info.value.reason is Reason.SERVER_ERROR
    with pytest.raises(BackendError) as info:
        openai.from_wire({"error": {"message": "template error"}}, "l:a")
    assert info.value.reason is Reason.SERVER_ERROR
    with pytest.raises(BackendError) as info:
        ollama.ChunkConverter("o:a").convert({"error": "model crashed"})
    assert info.value.reason is Reason.SERVER_ERROR
    with pytest.raises(BackendError) as info:
        anthropic.EventConverter("a:a").convert(
            "error", {"type": "error", "error": {"type": "api_error", "message": "x"}}
        )
    assert info.value.reason is Reason.SERVER_ERROR
    with pytest.raises(BackendError) as info:
        openai.chunk_from_wire("<html>not json", "l:a")
    assert info.value.reason is Reason.PROTOCOL
