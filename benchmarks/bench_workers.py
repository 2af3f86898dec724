"""``routing serve --workers N`` against direct calls: CPU per request, latency, throughput, RSS.

Run: ``python benchmarks/bench_workers.py [--workers 1,2] [--quick]``.  Loopback only, bounded.
For each worker count, a fake llama.cpp (child process) and ``routing serve --workers N``
(child processes) are started, and this process is the client (aiohttp, helpers of
bench_gateway.py).  Prints, from one run, as ratios:

- gateway CPU per request as a multiple of the fake's (user + system time of every gateway
  process, read from /proc, over the c=32 requests through it, against the fake's over the
  same number of direct requests);
- c=32 throughput through the gateway as a share of direct;
- added median at c=1, and stream time to first chunk added;
- RSS of the parent and of each worker with 1,000 instances configured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_gateway as bg

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def _serve(config: Path, workers: int) -> list[str]:
    return ["-m", "routing.cli", "serve", str(config), "--port", "0", "--workers", str(workers)]


async def _pids(session: aiohttp.ClientSession, url: str, parent: int, workers: int) -> list[int]:
    if workers == 1:
        return [parent]
    async with session.get(url + "/status") as reply:
        return [parent, *(w["pid"] for w in (await reply.json())["workers"])]


async def network(tmp: Path, workers: int, scale: float) -> dict[str, float]:
    """The ratios for ``--workers workers`` against one fake."""
    fake, fake_url = await bg._child("-m", "fake_servers", "llamacpp", "--model", bg.MODEL)
    config = tmp / f"bench{workers}.yaml"
    config.write_text(bg._config(fake_url), encoding="utf-8")
    gateway = None
    try:
        gateway, gw_url = await bg._child(*_serve(config, workers))
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            pids = await _pids(session, gw_url, gateway.pid or 0, workers)
            direct, through = bg._poster(session, fake_url), bg._poster(session, gw_url)
            for post in (direct, through):
                await bg._latencies(post, 50)
            n1, n32, ns = int(400 * scale), int(3000 * scale), int(200 * scale)
            lat: dict[bool, list[float]] = {False: [], True: []}
            spent = {False: 0.0, True: 0.0}
            cpu = {"fake_direct": 0.0, "fake_via": 0.0, "gateway": 0.0}
            ttfc: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(bg.ROUNDS):
                for via, post in ((False, direct), (True, through)):
                    lat[via] += await bg._latencies(post, max(n1 // bg.ROUNDS, 1))
            for _ in range(bg.ROUNDS):
                for via, post in ((False, direct), (True, through)):
                    n = max(n32 // bg.ROUNDS, 1)
                    f0, g0 = _cpu_seconds([fake.pid or 0]), _cpu_seconds(pids)
                    spent[via] += n / await bg._throughput(post, n, bg.CONCURRENCY)
                    f1, g1 = _cpu_seconds([fake.pid or 0]), _cpu_seconds(pids)
                    cpu["fake_via" if via else "fake_direct"] += f1 - f0
                    if via:
                        cpu["gateway"] += g1 - g0
            for _ in range(bg.ROUNDS):
                for via, url in ((False, fake_url), (True, gw_url)):
                    ttfc[via] += [
                        await bg._first_chunk(session, url)()
                        for _ in range(max(ns // bg.ROUNDS, 1))
                    ]
    finally:
        if gateway is not None:
            await bg._stop(gateway)
        await bg._stop(fake)
    done = bg.ROUNDS * max(n32 // bg.ROUNDS, 1)
    d1, g1m = statistics.median(lat[False]), statistics.median(lat[True])
    ds, gs = statistics.median(ttfc[False]), statistics.median(ttfc[True])
    return {
        "workers": workers,
        "requests_c32": done,
        "gateway_cpu_us": cpu["gateway"] / done * 1e6,
        "fake_cpu_us": cpu["fake_direct"] / done * 1e6,
        "cpu_ratio": cpu["gateway"] / max(cpu["fake_direct"], 1e-9),
        "throughput_ratio": (done / spent[True]) / (done / spent[False]),
        "direct_rps": done / spent[False],
        "gateway_rps": done / spent[True],
        "added_median_ms": (g1m - d1) * 1000,
        "ttfc_added_ms": (gs - ds) * 1000,
    }


async def memory(tmp: Path, workers: int) -> dict[str, Any]:
    """RSS (MB) of the parent and of each worker with 1,000 instances configured."""
    config = tmp / "big.yaml"
    config.write_text(bg._big_config(), encoding="utf-8")
    gateway, url = await bg._child(*_serve(config, workers))
    try:
        async with aiohttp.ClientSession() as session:
            pids = await _pids(session, url, gateway.pid or 0, workers)
            async with session.get(url + "/status") as reply:
                instances = len((await reply.json())["instances"])
        return {
            "instances": instances,
            "parent_mb": bg._rss_mb(pids[0]),
            "workers_mb": [bg._rss_mb(pid) for pid in pids[1:]],
        }
    finally:
        await bg._stop(gateway)


async def main_async(counts: list[int], scale: float) -> None:
    """Measure and print every figure."""
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        for workers in counts:
            r = await network(Path(tmp), workers, scale)
            print(
                f"--workers {workers}: gateway CPU/request {r['gateway_cpu_us']:.0f} µs = "
                f"{r['cpu_ratio']:.2f}x the fake's ({r['fake_cpu_us']:.0f} µs); "
                f"c=32 {r['gateway_rps']:.0f} vs {r['direct_rps']:.0f} req/s direct = "
                f"{r['throughput_ratio']:.1%}; c=1 added median {r['added_median_ms']:+.2f} ms; "
                f"stream TTFC added {r['ttfc_added_ms']:+.2f} ms",
                flush=True,
            )
        m = await memory(Path(tmp), max(counts))
        workers_mb = ", ".join(f"{mb:.1f}" for mb in m["workers_mb"]) or "-"
        print(
            f"RSS with {m['instances']} instances, --workers {max(counts)}: parent "
            f"{m['parent_mb']:.1f} MB, workers {workers_mb} MB",
            flush=True,
        )


def main() -> int:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    asyncio.run(asyncio.wait_for(main_async(counts, 0.1 if args.quick else 1.0), 600))
    return 0


if __name__ == "__main__":
    sys.exit(main())
