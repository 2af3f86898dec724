"""The library's operations: Router.embed, complete_text, stream_text, message,
stream_message and count_tokens, each answered in its own shape whatever the backend."""

from __future__ import annotations

from typing import Any

import pytest
from doors_support import MODELS, config_text, run

from fake_servers._extra_ops import vector
from routing import Router
from routing.config import parse_config

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def text(fake_server: Any) -> str:
    """A config: llama.cpp chat and embeddings servers naming one model, and an Ollama."""
    return config_text(
        {
            "llamacpp:chat": fake_server("llamacpp", [MODELS["llamacpp"]]),
            "llamacpp:embed": fake_server("llamacpp", [MODELS["llamacpp"]], embeddings=True),
            "ollama:one": fake_server("ollama", [MODELS["ollama"]]),
        }
    )


@pytest.mark.parametrize("kind", ["llamacpp", "ollama"])
def test_library_operations(text: str, kind: str) -> None:
    """Each operation answers in its door's shape from llama.cpp (native) and Ollama."""
    model = MODELS[kind]

    async def go() -> dict[str, Any]:
        async with Router(parse_config(text, environ={})) as router:
            events = [e async for e in router.stream_message(HI, model=model, max_tokens=16)]
            return {
                "embed": await router.embed(["alpha"], model=model),
                "text": await router.complete_text("x = ", model=model),
                "chunks": [c async for c in router.stream_text("x = ", model=model)],
                "message": await router.message(HI, model=model, max_tokens=16),
                "events": events,
                "tokens": await router.count_tokens(HI, model=model),
            }

    got = run(go())
    assert got["embed"]["data"][0]["embedding"] == pytest.approx(vector("alpha"), abs=1e-6)
    whole = got["text"]["choices"][0]["text"]
    assert whole.startswith(f"I am {model} on {kind} port ")
    assert "".join(c["choices"][0]["text"] for c in got["chunks"] if c["choices"]) == whole
    assert got["message"]["type"] == "message"
    assert got["message"]["content"][0]["text"] == whole
    kinds = [e["type"] for e in got["events"]]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert (
        "".join(
            e["delta"].get("text", "") for e in got["events"] if e["type"] == "content_block_delta"
        )
        == whole
    )
    assert got["tokens"] > 0
