"""Resolution against fake servers: each bug of the field, reproduced and prevented."""

from __future__ import annotations

import pytest
from support import FakeClock, config, provider, run

from fake_servers import start_fake
from routing import NoRouteError
from routing._decision import State
from routing._engine import Router


def test_provider_chosen_by_caller_is_honoured() -> None:
    """Bug 1: provider=llamacpp never lands on Ollama, even when Ollama serves the model too."""

    async def scenario() -> None:
        ollama = await start_fake("ollama", ["qwen3:latest"])
        llama = await start_fake("llamacpp", ["qwen3"])
        try:
            cfg = config(
                provider("ollama", "ollama", default=ollama.port)
                + provider("llamacpp", "openai", a=llama.port),
                "  - route: ollama\n",
            )
            async with Router(cfg) as router:
                assert (await router.resolve(model="qwen3")).instance == "ollama:default"
                d = await router.resolve(provider="llamacpp", model="qwen3")
                assert d.instance == "llamacpp:a"
                assert d.base_url == f"http://127.0.0.1:{llama.port}/v1"
                assert d.api == "openai"
        finally:
            await ollama.stop()
            await llama.stop()

    run(scenario())


def test_provider_instance_resolves_to_its_own_port() -> None:
    """Bug 2: llamacpp:qwen3-coder-30b names one instance, and resolves to its own port."""

    async def scenario() -> None:
        a = await start_fake("llamacpp", ["qwen25-coder-7b.gguf"])
        b = await start_fake("llamacpp", ["qwen3-coder-30b.gguf"])
        try:
            cfg = config(
                "  llamacpp:\n    api: openai\n    instances:\n"
                f"      qwen25-coder-7b: {{port: {a.port}}}\n"
                f"      qwen3-coder-30b: {{port: {b.port}}}\n"
            )
            async with Router(cfg) as router:
                d = await router.resolve(provider="llamacpp:qwen3-coder-30b")
                assert d.instance == "llamacpp:qwen3-coder-30b"
                assert d.base_url == f"http://127.0.0.1:{b.port}/v1"
                assert d.model == "qwen3-coder-30b.gguf"
                with pytest.raises(NoRouteError) as err:
                    await router.resolve(
                        provider="llamacpp:qwen3-coder-30b", model="qwen25-coder-7b.gguf"
                    )
                assert "qwen3-coder-30b.gguf" in str(err.value)
                assert [c.instance for c in err.value.candidates] == ["llamacpp:qwen3-coder-30b"]
        finally:
            await a.stop()
            await b.stop()

    run(scenario())


def test_probes_use_each_servers_own_endpoints_and_no_key() -> None:
    """Bug 3: Ollama on /api/tags, llama.cpp on /health then /v1/models; no key for local."""

    async def scenario() -> None:
        ollama = await start_fake("ollama", ["llama3:latest"])
        llama = await start_fake("llamacpp", ["m.gguf"])
        try:
            cfg = config(
                provider("ollama", "ollama", default=ollama.port)
                + provider("llamacpp", "openai", a=llama.port)
            )
            async with Router(cfg) as router:
                d = await router.resolve(model="llama3")
                assert (d.instance, d.model) == ("ollama:default", "llama3:latest")
                await router.resolve(model="m.gguf")
            ollama_paths = [r["path"] for r in ollama.requests]
            llama_paths = [r["path"] for r in llama.requests]
            assert "/api/tags" in ollama_paths and "/health" not in ollama_paths
            assert llama_paths[:2] == ["/health", "/v1/models"]
            for r in [*ollama.requests, *llama.requests]:
                assert "authorization" not in {h.lower() for h in r["headers"]}
        finally:
            await ollama.stop()
            await llama.stop()

    run(scenario())


def test_llamacpp_without_health_falls_back_to_models() -> None:
    """Bug 3: a llama.cpp (or proxy) answering 404 on /health is judged by /v1/models."""

    async def scenario() -> None:
        lms = await start_fake("lmstudio", ["x"])  # has no /health: answers 404
        try:
            cfg = config(
                f"  proxy:\n    api: openai\n    kind: llamacpp\n    instances:\n"
                f"      a: {{port: {lms.port}}}\n"
            )
            async with Router(cfg) as router:
                assert (await router.resolve(model="x")).instance == "proxy:a"
            assert [r["path"] for r in lms.requests][:2] == ["/health", "/v1/models"]
        finally:
            await lms.stop()

    run(scenario())


def _two_llamas(a_port: int, b_port: int) -> str:
    return (
        "  llamacpp:\n    api: openai\n    instances:\n"
        f"      qwen3-coder-30b: {{port: {a_port}}}\n"
        f"      qwen25-coder-7b: {{port: {b_port}}}\n"
    )


def test_second_model_goes_to_second_instance_and_never_to_first() -> None:
    """Bug 4: model B goes to instance B; with B down it is a NoRouteError, not A's answer."""

    async def scenario() -> None:
        a = await start_fake("llamacpp", ["qwen3-coder-30b.gguf"])
        b = await start_fake("llamacpp", ["qwen2.5-coder-7b-instruct-q8_0.gguf"])
        try:
            cfg = config(_two_llamas(a.port, b.port), "  - route: llamacpp\n")
            async with Router(cfg) as router:
                d = await router.resolve(model="qwen2.5-coder-7b-instruct-q8_0.gguf")
                assert d.instance == "llamacpp:qwen25-coder-7b"
                assert d.trace[0].why == "does not serve 'qwen2.5-coder-7b-instruct-q8_0.gguf'"
            await b.stop()
            async with Router(cfg) as router:
                with pytest.raises(NoRouteError) as err:
                    await router.resolve(model="qwen2.5-coder-7b-instruct-q8_0.gguf")
                states = {c.instance: c.state for c in err.value.candidates}
                assert states == {
                    "llamacpp:qwen3-coder-30b": State.READY,
                    "llamacpp:qwen25-coder-7b": State.DOWN,
                }
                assert err.value.unavailable is False
        finally:
            await a.stop()
            await b.stop()

    run(scenario())


def test_any_ready_fallback_is_explicit() -> None:
    """Only `fallback: any-ready` sends a model elsewhere, and the decision says so."""

    async def scenario() -> None:
        a = await start_fake("llamacpp", ["a.gguf"])
        try:
            cfg = config(provider("llamacpp", "openai", a=a.port), extra="fallback: any-ready\n")
            async with Router(cfg) as router:
                d = await router.resolve(model="b.gguf")
                assert d.fallback_used and d.instance == "llamacpp:a"
                assert "fallback any-ready" in d.reason
        finally:
            await a.stop()

    run(scenario())


def test_loading_instance_is_skipped_then_chosen_when_ready() -> None:
    """Bug 5: a LOADING llama.cpp is skipped; once ready (after the TTL) it is chosen."""

    async def scenario() -> None:
        a = await start_fake("llamacpp", ["m.gguf"])
        b = await start_fake("llamacpp", ["m.gguf"])
        a.set_loading(True)
        clock = FakeClock()
        try:
            cfg = config(_two_llamas(a.port, b.port))
            async with Router(cfg, clock=clock) as router:
                d = await router.resolve(model="m.gguf")
                assert d.instance == "llamacpp:qwen25-coder-7b"
                assert d.trace[0].state == State.LOADING
                a.set_loading(False)
                clock.advance(10)
                d = await router.resolve(model="m.gguf")
                assert d.instance == "llamacpp:qwen3-coder-30b"
        finally:
            await a.stop()
            await b.stop()

    run(scenario())


def test_hung_instance_costs_at_most_one_probe_timeout() -> None:
    """Bug 6: a hung instance is DOWN after one probe timeout; the healthy one still answers."""

    async def scenario() -> None:
        hung = await start_fake("llamacpp", ["m.gguf"], fault="hang")
        ok = await start_fake("llamacpp", ["m.gguf"])
        try:
            cfg = config(_two_llamas(hung.port, ok.port))
            async with Router(cfg) as router:
                d = await router.resolve(model="m.gguf")
                assert d.instance == "llamacpp:qwen25-coder-7b"
                assert d.trace[0].state == State.DOWN
                assert "within 0.5s" in d.trace[0].why
            # one probe request, given up after the one fan-out timeout: no retry loop
            assert [r["path"] for r in hung.requests] == ["/health"]
        finally:
            await hung.stop()
            await ok.stop()

    run(scenario())
