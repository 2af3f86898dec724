"""Scenario 4 against two real llama.cpp servers (extra `real`): model B lands on server B."""

from __future__ import annotations

import pytest
from support import config, provider, run

from routing import NoRouteError
from routing._engine import Router
from routing.conformance.real_llamacpp import RealLlamaCpp, missing_reason

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason())),
]


def test_two_real_servers_each_model_to_its_own_server() -> None:
    """Two real llama-servers with different --alias: each model goes to its own server, and
    with B stopped a request for B is a NoRouteError, never A answering as if it were B."""

    async def scenario() -> None:
        a = RealLlamaCpp("qwen3-coder-30b.gguf")
        b = RealLlamaCpp("qwen2.5-coder-7b-instruct-q8_0.gguf")
        try:
            await a.start()
            await b.start()
            cfg = config(
                provider(
                    "llamacpp", "openai", **{"qwen3-coder-30b": a.port, "qwen25-coder-7b": b.port}
                )
            )
            async with Router(cfg) as router:
                d = await router.resolve(model="qwen2.5-coder-7b-instruct-q8_0.gguf")
                assert d.instance == "llamacpp:qwen25-coder-7b"
                assert d.base_url == f"{b.url}/v1"
                reply = await router.chat(
                    [{"role": "user", "content": "hi"}],
                    model="qwen2.5-coder-7b-instruct-q8_0.gguf",
                    max_tokens=4,
                )
                assert reply["model"] == "qwen2.5-coder-7b-instruct-q8_0.gguf"
                d = await router.resolve(model="qwen3-coder-30b.gguf")
                assert d.instance == "llamacpp:qwen3-coder-30b"
            b.stop()
            async with Router(cfg) as router:
                with pytest.raises(NoRouteError) as err:
                    await router.resolve(model="qwen2.5-coder-7b-instruct-q8_0.gguf")
                states = {c.instance: c.state for c in err.value.candidates}
                assert states == {
                    "llamacpp:qwen3-coder-30b": "READY",
                    "llamacpp:qwen25-coder-7b": "DOWN",
                }
        finally:
            a.stop()
            b.stop()

    run(scenario())
