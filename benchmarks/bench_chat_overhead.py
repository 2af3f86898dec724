"""In-process overhead of ``router.chat`` against a plain aiohttp call to the same fake.

Run: ``python benchmarks/bench_chat_overhead.py``. Loopback only; the fake llama.cpp runs in a
child process so it does not share this event loop. Both sides POST the same body and parse
the JSON reply. Prints the added median latency at concurrency 1 and the throughput ratio at
concurrency 32 (targets: < 0.3 ms added, >= 60 % of direct).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fakeproc import FakeProcess

from routing._engine import Router
from routing.config import parse_config

MODEL = "bench.gguf"
MESSAGES = [{"role": "user", "content": "hi"}]
SEQUENTIAL = 2000
CONCURRENT = 6000
CONCURRENCY = 32

Call = Callable[[], Awaitable[object]]


async def latencies(call: Call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t)
    return out


async def throughput(call: Call, n: int, concurrency: int) -> float:
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - t)


def chat_clients(
    router: Router, session: aiohttp.ClientSession, url: str
) -> tuple[Callable[[], Awaitable[object]], Callable[[], Awaitable[object]]]:
    """The two sides compared: a plain aiohttp POST to ``url`` and ``router.chat``, both
    parsing the JSON reply."""

    async def direct() -> object:
        body = {"model": MODEL, "messages": MESSAGES, "stream": False}
        async with session.post(url, json=body) as resp:
            return await resp.json()

    async def routed() -> object:
        return await router.chat(MESSAGES, model=MODEL)

    return direct, routed


async def measure(
    sequential: int = SEQUENTIAL, concurrent: int = CONCURRENT, concurrency: int = CONCURRENCY
) -> dict[str, float]:
    """router.chat against direct aiohttp: medians/means (ms) at c=1, req/s at ``concurrency``."""
    fake = await FakeProcess("llamacpp", MODEL).start()
    config = parse_config(
        "version: 1\nproviders:\n  llamacpp:\n    api: openai\n    instances:\n"
        f"      a: {{port: {fake.port}}}\n",
        environ={},
    )
    url = fake.url + "/v1/chat/completions"
    try:
        async with (
            Router(config) as router,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        ):
            direct, routed = chat_clients(router, session, url)
            for call in (direct, routed):  # warm up connections, probes, caches
                await latencies(call, min(200, sequential))
            d1: list[float] = []
            r1: list[float] = []
            for _ in range(4):  # interleave so drift hits both sides alike
                d1 += await latencies(direct, sequential // 4)
                r1 += await latencies(routed, sequential // 4)
            d32 = r32 = 0.0
            for _ in range(2):
                d32 += await throughput(direct, concurrent // 2, concurrency) / 2
                r32 += await throughput(routed, concurrent // 2, concurrency) / 2
    finally:
        await fake.kill()
    dm, rm = statistics.median(d1) * 1e3, statistics.median(r1) * 1e3
    da, ra = statistics.fmean(d1) * 1e3, statistics.fmean(r1) * 1e3
    return {
        "sequential": sequential,
        "concurrent": concurrent,
        "concurrency": concurrency,
        "direct_median_ms": dm,
        "routed_median_ms": rm,
        "added_median_ms": rm - dm,
        "direct_mean_ms": da,
        "routed_mean_ms": ra,
        "added_mean_ms": ra - da,
        "direct_rps": d32,
        "routed_rps": r32,
        "throughput_ratio": r32 / d32,
    }


async def main() -> None:
    r = await measure()
    dm, rm = r["direct_median_ms"], r["routed_median_ms"]
    print(
        f"concurrency 1  ({r['sequential']:.0f} requests each): median direct {dm:.3f} ms, "
        f"router.chat {rm:.3f} ms, added {rm - dm:+.3f} ms (ratio {rm / dm:.2f}x); "
        f"mean added {r['added_mean_ms']:+.3f} ms"
    )
    print(
        f"concurrency {r['concurrency']:.0f} ({r['concurrent']:.0f} requests each): direct "
        f"{r['direct_rps']:.0f} req/s, router.chat {r['routed_rps']:.0f} req/s, "
        f"ratio {r['throughput_ratio']:.1%} of direct"
    )


if __name__ == "__main__":
    asyncio.run(main())
