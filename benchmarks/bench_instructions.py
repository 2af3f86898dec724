"""Instructions per request of ``routing serve`` and of the fake backend: a repeatable CPU ratio.

Run: ``python benchmarks/bench_instructions.py [--requests 300] [--loops asyncio,uvloop]
[--concurrency 4] [--stream] [--floor]``.
Needs valgrind (Debian package ``valgrind``); says so and exits 0 without it.  Loopback only.

CPU time per request on a shared or virtual machine moves by tens of percent from one run
to the next (other tenants, caches, frequency); an instruction count does not.  Each process
measured runs under ``valgrind --tool=callgrind --instr-atstart=no``: after a warm-up
(connections, probes, caches), counting is switched on with ``callgrind_control -i on``,
``--requests`` chat requests (``--stream``: streamed, each read to its end) are sent at
``--concurrency`` (default 4) by this process (aiohttp), counting is switched off, and the
process is stopped, which writes the total.  At 16 or 32 the requests in flight hold many
young objects at once, which is where the cyclic GC's settings show (``routing serve`` sets
its own: :data:`routing._gateway_server.GC_THRESHOLD`).

Measured, in one run: the fake llama.cpp answering directly (the baseline: ``python -m
fake_servers llamacpp``, asyncio), then ``routing serve`` in front of a fake on each event
loop of ``--loops``.  Printed: instructions per request of each, and the gateway's as a
multiple of the fake's.  Instructions are not time: a syscall or a cache miss costs more
than an instruction, and the gateway makes twice the fake's socket calls (one connection
in, one out), so its CPU time ratio is higher than its instruction ratio (bench_workers.py
measures CPU time).

``--floor`` (not with ``--stream``) also counts the bare aiohttp proxy
(``_proxy_floor.py``) on each loop and prints routing's own instructions: the gateway's
less the proxy's, the part routing's code can change.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_gateway as bg

CONCURRENCY = 4  # default of --concurrency
FLOOR = str(Path(__file__).resolve().parent / "_proxy_floor.py")
START_TIMEOUT = 300.0  # seconds: Python under valgrind starts some 50x slower
CONTROL_TIMEOUT = 120.0


async def _under_callgrind(out: Path, *args: str) -> tuple[asyncio.subprocess.Process, str]:
    """A child under callgrind, counting off, that prints ``listening on URL`` first."""
    proc = await asyncio.create_subprocess_exec(
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)).decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"child did not start under valgrind: {line!r}")
    return proc, line.removeprefix("listening on ")


def _counting(pid: int, on: bool) -> None:
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(pid)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=CONTROL_TIMEOUT,
    )


def _total(out: Path) -> int:
    """The instruction total callgrind wrote (``totals:``/``summary:`` line)."""
    found = re.findall(r"^(?:totals|summary): (\d+)", out.read_text(), re.MULTILINE)
    if not found:
        raise RuntimeError(f"no totals in {out}")
    return max(int(n) for n in found)


async def _count(
    out: Path, args: list[str], requests: int, stream: bool, concurrency: int = CONCURRENCY
) -> float:
    """Instructions per request of the child ``args`` (python arguments) under callgrind."""
    proc, url = await _under_callgrind(out, *args)
    try:
        async with aiohttp.ClientSession() as session:
            post = _streamer(session, url) if stream else bg._poster(session, url)
            await bg._throughput(post, 100, concurrency)  # warm up: connections, probes
            _counting(proc.pid, True)
            await bg._throughput(post, requests, concurrency)
            _counting(proc.pid, False)
    finally:
        await bg._stop(proc)  # a clean exit writes the counts
    return _total(out) / requests


def _streamer(session: aiohttp.ClientSession, url: str) -> Callable[[], Awaitable[None]]:
    read = bg._first_chunk(session, url)  # reads the whole stream

    async def post() -> None:
        await read()

    return post


def _serve_args(config: Path, loop: str) -> list[str]:
    return ["-m", "routing.cli", "serve", str(config), "--port", "0", "--loop", loop]


async def measure(
    requests: int,
    loops: list[str],
    stream: bool = False,
    concurrency: int = CONCURRENCY,
    floor: bool = False,
) -> dict[str, float]:
    """Instructions per request: ``fake`` directly, ``routing serve`` on each loop, and with
    ``floor`` the bare aiohttp proxy on each loop (``floor LOOP``)."""
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        counts = {
            "fake": await _count(
                Path(tmp) / "fake.out",
                ["-m", "fake_servers", "llamacpp", "--model", bg.MODEL],
                requests,
                stream,
                concurrency,
            )
        }
        fake, fake_url = await bg._child("-m", "fake_servers", "llamacpp", "--model", bg.MODEL)
        try:
            config = Path(tmp) / "bench.yaml"
            config.write_text(bg._config(fake_url), encoding="utf-8")
            for loop in loops:
                counts[loop] = await _count(
                    Path(tmp) / f"{loop}.out",
                    _serve_args(config, loop),
                    requests,
                    stream,
                    concurrency,
                )
                if floor:
                    counts[f"floor {loop}"] = await _count(
                        Path(tmp) / f"floor-{loop}.out",
                        [FLOOR, fake_url, "--loop", loop],
                        requests,
                        stream,
                        concurrency,
                    )
        finally:
            await bg._stop(fake)
    return counts


def main() -> int:
    """Parse the arguments, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--stream", action="store_true", help="streamed chat requests")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="requests at once")
    parser.add_argument(
        "--floor", action="store_true", help="also count the bare aiohttp proxy (not --stream)"
    )
    args = parser.parse_args()
    if args.floor and args.stream:
        parser.error("--floor counts non-streamed chat only (the proxy does not stream)")
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian: valgrind): nothing measured")
        return 0
    loops = [name for name in args.loops.split(",") if name]
    work = measure(args.requests, loops, args.stream, args.concurrency, args.floor)
    counts = asyncio.run(asyncio.wait_for(work, 1800))
    fake = counts["fake"]
    what = ("streamed chat" if args.stream else "chat") + f" at concurrency {args.concurrency}"
    print(f"{what}: fake llama.cpp (direct): {fake:,.0f} instructions/request")
    for loop in loops:
        print(
            f"routing serve --loop {loop}: {counts[loop]:,.0f} instructions/request = "
            f"{counts[loop] / fake:.2f}x the fake's"
        )
        if args.floor:
            floor, own = counts[f"floor {loop}"], counts[loop] - counts[f"floor {loop}"]
            print(
                f"bare aiohttp proxy --loop {loop}: {floor:,.0f} instructions/request = "
                f"{floor / fake:.2f}x the fake's; routing's own: {own:,.0f} = "
                f"{own / fake:.2f}x the fake's"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
