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

from routing.config import parse_config
from routing.engine import Router

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


async def main() -> None:
    fake = await FakeProcess("llamacpp", MODEL).start()
    config = parse_config(
        "version: 1\nproviders:\n  llamacpp:\n    api: openai\n    instances:\n"
        f"      a: {{port: {fake.port}}}\n", environ={})
    url = fake.url + "/v1/chat/completions"
    try:
        async with Router(config) as router, aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0)) as session:

            async def direct() -> object:
                body = {"model": MODEL, "messages": MESSAGES, "stream": False}
                async with session.post(url, json=body) as resp:
                    return await resp.json()

            async def routed() -> object:
                return await router.chat(MESSAGES, model=MODEL)

            for call in (direct, routed):  # warm up connections, probes, caches
                await latencies(call, 200)
            d1: list[float] = []
            r1: list[float] = []
            for _ in range(4):  # interleave so drift hits both sides alike
                d1 += await latencies(direct, SEQUENTIAL // 4)
                r1 += await latencies(routed, SEQUENTIAL // 4)
            d32 = r32 = 0.0
            for _ in range(2):
                d32 += await throughput(direct, CONCURRENT // 2, CONCURRENCY) / 2
                r32 += await throughput(routed, CONCURRENT // 2, CONCURRENCY) / 2
    finally:
        await fake.kill()
    dm, rm = statistics.median(d1) * 1e3, statistics.median(r1) * 1e3
    da, ra = statistics.fmean(d1) * 1e3, statistics.fmean(r1) * 1e3
    print(f"concurrency 1  ({SEQUENTIAL} requests each): median direct {dm:.3f} ms, "
          f"router.chat {rm:.3f} ms, added {rm - dm:+.3f} ms (ratio {rm / dm:.2f}x); "
          f"mean added {ra - da:+.3f} ms")
    print(f"concurrency {CONCURRENCY} ({CONCURRENT} requests each): direct {d32:.0f} req/s, "
          f"router.chat {r32:.0f} req/s, ratio {r32 / d32:.1%} of direct")


if __name__ == "__main__":
    asyncio.run(main())
