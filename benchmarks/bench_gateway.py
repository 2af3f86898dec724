"""The gateway against direct calls to the same fake, its memory, and ``import routing`` time.

Run: ``python benchmarks/bench_gateway.py``.  Loopback only, bounded in count and time.
The fake llama.cpp and ``routing serve`` each run in a child process; this process is the
client (aiohttp).  Direct and gateway are measured in alternating slices (``ROUNDS``) so
drift from other load on the shared cores hits both alike.  Prints, from one run:

- non-stream at concurrency 1: median latency direct and through the gateway, the added ms
  (target < 1 ms);
- non-stream at concurrency 32: throughput through the gateway as a share of direct
  (target >= 50 %; client, gateway and backend share the machine's cores);
- stream: median time to first chunk, gateway / direct;
- RSS of ``routing serve`` with 1,000 instances configured (target < 100 MB);
- ``python -c "import routing"`` wall time, best of 5, and the bare interpreter's
  (target < 150 ms).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

MODEL = "bench.gguf"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
SEQUENTIAL = 500
CONCURRENT = 3000
CONCURRENCY = 32
STREAMS = 200
ROUNDS = 4  # alternating direct/gateway slices of each measurement
INSTANCES = 1000
DEADLINE = 120.0  # seconds: the whole run gives up after this


async def _child(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    """Start a child that prints ``listening on URL`` first; return it and the URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"child did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _serve_args(config: Path) -> list[str]:
    code = (
        "import asyncio, sys; from routing._gateway_server import serve; "
        "asyncio.run(serve(sys.argv[1], '127.0.0.1', 0))"
    )
    return ["-c", code, str(config)]


async def _timed(call: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


def _poster(session: aiohttp.ClientSession, url: str) -> Callable[[], Awaitable[None]]:
    async def post() -> None:
        async with session.post(url + "/v1/chat/completions", json=BODY) as resp:
            assert resp.status == 200, resp.status
            await resp.json()

    return post


def _first_chunk(session: aiohttp.ClientSession, url: str) -> Callable[[], Awaitable[float]]:
    async def stream() -> float:
        started = time.perf_counter()
        first = 0.0
        async with session.post(
            url + "/v1/chat/completions", json={**BODY, "stream": True}
        ) as resp:
            assert resp.status == 200, resp.status
            async for line in resp.content:
                if line.startswith(b"data: {") and not first:
                    first = time.perf_counter() - started
        return first

    return stream


async def _latencies(post: Callable[[], Awaitable[None]], n: int) -> list[float]:
    return [await _timed(post) for _ in range(n)]


async def _throughput(post: Callable[[], Awaitable[None]], total: int, workers: int) -> float:
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await post()

    elapsed = await _timed(lambda: _gather(worker() for _ in range(workers)))
    return total / elapsed


async def _gather(coros: object) -> None:
    await asyncio.gather(*coros)  # type: ignore[misc]


def _config(fake_url: str) -> str:
    return (
        "version: 1\ndefaults:\n  probe: {timeout: 1, ttl: 3600}\nproviders:\n"
        "  llamacpp:\n    api: openai\n    instances:\n"
        f'      bench: {{url: "{fake_url}"}}\n'
    )


def _big_config() -> str:
    lines = ["version: 1\nproviders:\n  llamacpp:\n    api: openai\n    instances:\n"]
    lines += [f"      i{n}: {{port: {20000 + n}}}\n" for n in range(INSTANCES)]
    return "".join(lines)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wall(args: list[str], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, timeout=30)
        best = min(best, time.perf_counter() - started)
    return best


async def _network(
    tmp: Path,
    sequential: int = SEQUENTIAL,
    concurrent: int = CONCURRENT,
    concurrency: int = CONCURRENCY,
    streams: int = STREAMS,
) -> dict[str, float]:
    fake, fake_url = await _child("-m", "fake_servers", "llamacpp", "--model", MODEL)
    config = tmp / "bench.yaml"
    config.write_text(_config(fake_url), encoding="utf-8")
    try:
        gateway, gw_url = await _child(*_serve_args(config))
    except BaseException:
        await _stop(fake)
        raise
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            direct, through = _poster(session, fake_url), _poster(session, gw_url)
            for post in (direct, through):  # warm up connections, probes, caches
                await _latencies(post, min(50, sequential))
            # Each figure is taken in ROUNDS alternating slices, direct then gateway, so
            # that drift (other load on the shared cores) hits both sides alike; the
            # request counts are the same as in one slice each.
            lat: dict[bool, list[float]] = {False: [], True: []}
            spent = {False: 0.0, True: 0.0}
            ttfc: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(ROUNDS):
                for via, post in ((False, direct), (True, through)):
                    lat[via] += await _latencies(post, max(sequential // ROUNDS, 1))
            for _ in range(ROUNDS):
                for via, post in ((False, direct), (True, through)):
                    n = max(concurrent // ROUNDS, 1)
                    spent[via] += n / await _throughput(post, n, concurrency)
            for _ in range(ROUNDS):
                for via, url in ((False, fake_url), (True, gw_url)):
                    ttfc[via] += [
                        await _first_chunk(session, url)() for _ in range(max(streams // ROUNDS, 1))
                    ]
            d1, g1 = statistics.median(lat[False]), statistics.median(lat[True])
            done = ROUNDS * max(concurrent // ROUNDS, 1)
            d32, g32 = done / spent[False], done / spent[True]
            ds, gs = statistics.median(ttfc[False]), statistics.median(ttfc[True])
    finally:
        await _stop(gateway)
        await _stop(fake)
    return {
        "sequential": sequential,
        "concurrent": concurrent,
        "concurrency": concurrency,
        "streams": streams,
        "direct_median_ms": d1 * 1000,
        "gateway_median_ms": g1 * 1000,
        "added_median_ms": (g1 - d1) * 1000,
        "direct_rps": d32,
        "gateway_rps": g32,
        "throughput_ratio": g32 / d32,
        "direct_ttfc_ms": ds * 1000,
        "gateway_ttfc_ms": gs * 1000,
        "ttfc_ratio": gs / ds,
        "ttfc_added_ms": (gs - ds) * 1000,
    }


async def _memory(tmp: Path) -> dict[str, float]:
    config = tmp / "big.yaml"
    config.write_text(_big_config(), encoding="utf-8")
    gateway, gw_url = await _child(*_serve_args(config))
    try:
        assert gateway.pid is not None
        idle = _rss_mb(gateway.pid)
        async with aiohttp.ClientSession() as session, session.get(gw_url + "/status") as r:
            rows = (await r.json())["instances"]
        after = _rss_mb(gateway.pid)
    finally:
        await _stop(gateway)
    return {"instances": len(rows), "rss_start_mb": idle, "rss_after_status_mb": after}


async def measure(
    sequential: int = SEQUENTIAL,
    concurrent: int = CONCURRENT,
    concurrency: int = CONCURRENCY,
    streams: int = STREAMS,
) -> dict[str, Any]:
    """Gateway vs direct (``network``) and ``routing serve`` RSS with 1,000 instances
    (``memory``); each part gives up after ``DEADLINE`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        network = await asyncio.wait_for(
            _network(Path(tmp), sequential, concurrent, concurrency, streams), DEADLINE
        )
        memory = await asyncio.wait_for(_memory(Path(tmp)), DEADLINE)
    return {"network": network, "memory": memory}


def import_time(runs: int = 5) -> dict[str, float]:
    """``python -c "import routing"`` and the bare interpreter, best of ``runs``, in ms."""
    bare = _wall(["-c", "pass"], runs)
    imported = _wall(["-c", "import routing"], runs)
    return {
        "bare_ms": bare * 1000,
        "import_routing_ms": imported * 1000,
        "import_itself_ms": (imported - bare) * 1000,
    }


def main() -> None:
    """Run every measurement once and print the figures."""
    print(f"cpus: {os.cpu_count()}; python {sys.version.split()[0]}")
    r = asyncio.run(measure())
    n, m = r["network"], r["memory"]
    print(
        f"c=1   non-stream median: direct {n['direct_median_ms']:.2f} ms, gateway "
        f"{n['gateway_median_ms']:.2f} ms, added {n['added_median_ms']:.2f} ms (target < 1 ms)"
    )
    print(
        f"c=32  throughput: direct {n['direct_rps']:.0f} req/s, gateway {n['gateway_rps']:.0f} "
        f"req/s, ratio {n['throughput_ratio']:.0%} (target >= 50%)"
    )
    print(
        f"stream first chunk median: direct {n['direct_ttfc_ms']:.2f} ms, gateway "
        f"{n['gateway_ttfc_ms']:.2f} ms, ratio {n['ttfc_ratio']:.2f}x "
        f"(added {n['ttfc_added_ms']:.2f} ms)"
    )
    print(
        f"routing serve with {m['instances']:.0f} instances: RSS {m['rss_start_mb']:.1f} MB "
        f"after start, {m['rss_after_status_mb']:.1f} MB after /status (target < 100 MB)"
    )
    t = import_time()
    print(
        f"python -c 'import routing': {t['import_routing_ms']:.0f} ms (bare interpreter "
        f"{t['bare_ms']:.0f} ms, import itself {t['import_itself_ms']:.0f} ms; "
        "target < 150 ms)"
    )


if __name__ == "__main__":
    main()
