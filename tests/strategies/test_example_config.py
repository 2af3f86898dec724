"""configs/strategies.yaml does what its comments say, against fakes on its instances."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from strategies_support import FakeClock, body, hash_order, run, start, stop_all

from routing._engine import Router
from routing.config import parse_config

EXAMPLE = Path(__file__).parents[2] / "configs" / "strategies.yaml"


def test_example_config_routes_as_documented() -> None:
    """qwen* sticky over the warm coders, *.gguf round-robin over them, the router-mode
    server (nothing loaded) never loads a model, other models least-busy (Ollama)."""

    async def scenario() -> None:
        models = ["qwen-coder", "job.gguf"]
        router_mode = await start("llamacpp", models, router_mode=True)
        coder_a, coder_b = await start("llamacpp", models), await start("llamacpp", models)
        ollama = await start("ollama", ["llama3"])
        text = EXAMPLE.read_text(encoding="utf-8")
        for port, fake in ((8080, router_mode), (11435, coder_a), (11436, coder_b)):
            text = text.replace(f"{{port: {port}}}", f"{{port: {fake.port}}}")
        cfg = parse_config(text, environ={"OLLAMA_HOST": ollama.url})
        try:
            async with Router(cfg, clock=FakeClock()) as router:
                coders = ["llamacpp:coder-a", "llamacpp:coder-b"]
                for i in range(8):
                    done = await router.complete(body(model="qwen-coder"), session=f"c{i}")
                    assert done.decision.instance == hash_order(f"h:c{i}", coders)[0]
                jobs = Counter(
                    [
                        (await router.complete(body(model="job.gguf"))).decision.instance
                        for _ in range(6)
                    ]
                )
                other = await router.complete(body(model="llama3"))
            assert jobs == {"llamacpp:coder-a": 3, "llamacpp:coder-b": 3}
            assert other.decision.instance == "ollama:default"
            assert "strategy least-busy" in other.decision.reason
            assert router_mode.state()["loads"] == 0
        finally:
            await stop_all([router_mode, coder_a, coder_b, ollama])

    run(scenario())
