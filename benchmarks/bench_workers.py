"""``routing serve --workers N`` against direct calls: CPU per request, latency, throughput, RSS.

Run: ``python benchmarks/bench_workers.py [--workers 1,2] [--loops auto] [--no-floor]
[--quick] [--concurrency 32]``. Loopback only, bounded. For each worker count and event
loop, a fake llama.cpp (child process) and ``routing serve --workers N --loop L`` (child
processes) are started; this process is the client (aiohttp, helpers of bench_gateway.py).
With the floor (default) the same is measured for a bare aiohttp proxy (``_proxy_floor.py``:
bytes in, bytes out, no routing): what any gateway built on aiohttp costs on this machine.
Prints, from one run, as ratios against direct calls to the same fake, measured in
alternating slices (``ROUNDS``):

- gateway CPU per request as a multiple of the fake's (user + system time of every gateway
  process, read from /proc, over the concurrent requests through it: c=32 unless
  ``--concurrency`` says otherwise), against two baselines: the fake's CPU over the same
  number of direct requests (pooled over all slices, and the median of the slices' own
  ratios, robust to a slice disturbed by other load), and the fake's CPU over the very
  requests the gateway forwarded, read in the same slices ("same requests"). The second
  compares both processes on the same requests at the same moment and rate: a server's CPU
  per request falls as its request rate rises (more requests per event-loop turn), and the
  direct slices run the fake at about twice the rate, so the direct baseline moves with the
  client's own speed from one run to the next;
- the concurrent throughput through the gateway as a share of direct, with the cores kept
  busy each way (the CPU of this client, the fake and the gateway over the wall time of the
  slices) and the gateway CPU per request that would give 50% at the cores kept busy through
  it: on a machine the client shares, a proxy that leaves cores idle must spend less than
  that;
- added median at c=1, and stream time to first chunk added (not for the floor);
- RSS of the parent and of each worker with 1,000 instances configured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_gateway as bg

TICK = os.sysconf("SC_CLK_TCK")
ROUNDS = 8  # alternating direct/gateway slices of each measurement
FLOOR = str(Path(__file__).resolve().parent / "_proxy_floor.py")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def _serve(config: Path, workers: int, loop: str) -> list[str]:
    return [
        "-m", "routing.cli", "serve", str(config), "--port", "0",
        "--workers", str(workers), "--loop", loop,
    ]  # fmt: skip


async def _pids(session: aiohttp.ClientSession, url: str, parent: int, workers: int) -> list[int]:
    if workers == 1:
        return [parent]
    async with session.get(url + "/status") as reply:
        return [parent, *(w["pid"] for w in (await reply.json())["workers"])]


async def _alternate(
    rounds: int, direct: Callable[[], Awaitable[Any]], through: Callable[[], Awaitable[Any]]
) -> None:
    for _ in range(rounds):
        await direct()
        await through()


async def network(
    tmp: Path,
    workers: int,
    loop: str,
    scale: float,
    *,
    floor: bool = False,
    concurrency: int = bg.CONCURRENCY,
) -> dict[str, float]:
    """The ratios for ``routing serve --workers workers --loop loop`` (or the floor proxy)."""
    fake, fake_url = await bg._child("-m", "fake_servers", "llamacpp", "--model", bg.MODEL)
    config = tmp / f"bench{workers}.yaml"
    config.write_text(bg._config(fake_url), encoding="utf-8")
    gateway = None
    try:
        args = [FLOOR, fake_url, "--loop", loop] if floor else _serve(config, workers, loop)
        gateway, gw_url = await bg._child(*args)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            pids = (
                [gateway.pid or 0]
                if floor
                else await _pids(session, gw_url, gateway.pid or 0, workers)
            )
            direct, through = bg._poster(session, fake_url), bg._poster(session, gw_url)
            for post in (direct, through):
                await bg._latencies(post, 50)
            n1, nc, ns = int(400 * scale), int(4000 * scale), int(200 * scale)
            per1, perc, pers = max(n1 // ROUNDS, 1), max(nc // ROUNDS, 1), max(ns // ROUNDS, 1)
            lat: dict[bool, list[float]] = {False: [], True: []}
            spent = {False: 0.0, True: 0.0}
            busy = {False: 0.0, True: 0.0}  # CPU seconds of client, fake and gateway
            client_same: list[float] = []  # this client's CPU over the same requests
            fake_cpu: list[float] = []
            fake_same: list[float] = []  # the fake's CPU over the requests through the gateway
            gateway_cpu: list[float] = []
            ttfc: dict[bool, list[float]] = {False: [], True: []}

            async def sequential(via: bool) -> None:
                lat[via] += await bg._latencies(through if via else direct, per1)

            await _alternate(ROUNDS, lambda: sequential(False), lambda: sequential(True))

            async def concurrent(via: bool) -> None:
                c0, f0, g0 = time.process_time(), _cpu_seconds([fake.pid or 0]), _cpu_seconds(pids)
                rate = await bg._throughput(through if via else direct, perc, concurrency)
                c1, f1, g1 = time.process_time(), _cpu_seconds([fake.pid or 0]), _cpu_seconds(pids)
                spent[via] += perc / rate
                busy[via] += (c1 - c0) + (f1 - f0) + (g1 - g0 if via else 0.0)
                if via:
                    client_same.append(c1 - c0)
                    gateway_cpu.append(g1 - g0)
                    fake_same.append(f1 - f0)
                else:
                    fake_cpu.append(f1 - f0)

            await _alternate(ROUNDS, lambda: concurrent(False), lambda: concurrent(True))

            async def streams(via: bool) -> None:
                first = bg._first_chunk(session, gw_url if via else fake_url)
                ttfc[via] += [await first() for _ in range(pers)]

            if not floor:
                await _alternate(ROUNDS, lambda: streams(False), lambda: streams(True))
    finally:
        if gateway is not None:
            await bg._stop(gateway)
        await bg._stop(fake)
    done = ROUNDS * perc
    d1, g1m = statistics.median(lat[False]), statistics.median(lat[True])
    slices = [g / f for g, f in zip(gateway_cpu, fake_cpu, strict=True) if f > 0]
    result = {
        "workers": workers,
        "concurrency": concurrency,
        "requests_concurrent": done,
        "gateway_cpu_us": sum(gateway_cpu) / done * 1e6,
        "fake_cpu_us": sum(fake_cpu) / done * 1e6,
        "cpu_ratio": sum(gateway_cpu) / max(sum(fake_cpu), 1e-9),
        "cpu_ratio_median": statistics.median(slices) if slices else float("nan"),
        "fake_same_cpu_us": sum(fake_same) / done * 1e6,
        "cpu_ratio_same": sum(gateway_cpu) / max(sum(fake_same), 1e-9),
        "throughput_ratio": (done / spent[True]) / (done / spent[False]),
        "direct_rps": done / spent[False],
        "gateway_rps": done / spent[True],
        "added_median_ms": (g1m - d1) * 1000,
        "ttfc_added_ms": float("nan"),
        "cores_direct": busy[False] / spent[False],
        "cores_through": busy[True] / spent[True],
        # 50% of direct at the cores kept busy through the gateway: the CPU per request the
        # three processes may spend together, less what the client and the fake spent.
        "gateway_cpu_us_for_half": (
            2 * spent[False] * busy[True] / spent[True] - sum(client_same) - sum(fake_same)
        )
        / done
        * 1e6,
    }
    if not floor:
        result["ttfc_added_ms"] = (
            statistics.median(ttfc[True]) - statistics.median(ttfc[False])
        ) * 1000
    return result


async def memory(tmp: Path, workers: int, loop: str) -> dict[str, Any]:
    """RSS (MB) of the parent and of each worker with 1,000 instances configured."""
    config = tmp / "big.yaml"
    config.write_text(bg._big_config(), encoding="utf-8")
    gateway, url = await bg._child(*_serve(config, workers, loop))
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


def _line(label: str, r: dict[str, float]) -> str:
    text = (
        f"{label}: CPU/request {r['gateway_cpu_us']:.0f} µs = {r['cpu_ratio']:.2f}x the fake's "
        f"({r['fake_cpu_us']:.0f} µs; median of slices {r['cpu_ratio_median']:.2f}x), "
        f"{r['cpu_ratio_same']:.2f}x on the same requests ({r['fake_same_cpu_us']:.0f} µs); "
        f"c={r['concurrency']:.0f} {r['gateway_rps']:.0f} vs {r['direct_rps']:.0f} req/s direct = "
        f"{r['throughput_ratio']:.1%} (cores busy {r['cores_through']:.2f} vs "
        f"{r['cores_direct']:.2f}; 50% needs <= {r['gateway_cpu_us_for_half']:.0f} µs); "
        f"c=1 added median {r['added_median_ms']:+.2f} ms"
    )
    if r["ttfc_added_ms"] == r["ttfc_added_ms"]:  # not NaN
        text += f"; stream TTFC added {r['ttfc_added_ms']:+.2f} ms"
    return text


async def main_async(
    counts: list[int], loops: list[str], scale: float, floor: bool, concurrency: int
) -> None:
    """Measure and print every figure."""
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        for loop in loops:
            if floor:
                r = await network(Path(tmp), 1, loop, scale, floor=True, concurrency=concurrency)
                print(_line(f"aiohttp proxy floor, loop {loop}", r), flush=True)
            for workers in counts:
                r = await network(Path(tmp), workers, loop, scale, concurrency=concurrency)
                print(_line(f"routing serve --workers {workers} --loop {loop}", r), flush=True)
        m = await memory(Path(tmp), max(counts), loops[0])
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
    parser.add_argument("--loops", default="auto", help="comma-separated: auto, asyncio, uvloop")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare aiohttp proxy")
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests")
    parser.add_argument(
        "--concurrency", type=int, default=bg.CONCURRENCY, help="requests at once (default 32)"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    loops = [name for name in args.loops.split(",") if name]
    scale = 0.1 if args.quick else 1.0
    work = main_async(counts, loops, scale, not args.no_floor, max(args.concurrency, 1))
    asyncio.run(asyncio.wait_for(work, 1200))
    return 0


if __name__ == "__main__":
    sys.exit(main())
