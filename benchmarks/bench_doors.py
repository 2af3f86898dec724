"""The Anthropic door against the OpenAI door on the same fake, as ratios.

Run: ``python benchmarks/bench_doors.py [--quick]``.  Loopback only, bounded in count and
time.  Two fakes run in child processes: an LM Studio one (OpenAI style, no Messages API:
the Anthropic door *translates* to chat and back) and a llama.cpp one (it speaks Messages:
the Anthropic door *passes through*); ``routing serve`` runs in a third child; this process
is the client.  For each fake, the same question goes through ``POST /v1/chat/completions``
and ``POST /v1/messages``, in alternating slices (``ROUNDS``) so drift from other load on
the shared cores hits both alike.  Prints one table: per backend and measure, the OpenAI
door's figure, the Anthropic door's, and their ratio (Anthropic / OpenAI):

- median latency, non-stream, concurrency 1;
- throughput, non-stream, concurrency 16 (a ratio below 1 is the translation's cost);
- median time to the first streamed text, and to the stream's end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fakeproc import FakeProcess

MODEL = "bench-model"
HI = [{"role": "user", "content": "hi"}]
DOORS = {
    "openai": ("/v1/chat/completions", {"model": MODEL, "messages": HI, "max_tokens": 32}),
    "anthropic": ("/v1/messages", {"model": MODEL, "messages": HI, "max_tokens": 32}),
}
Post = Callable[[], Awaitable[None]]


async def _gateway(config: Path) -> tuple[asyncio.subprocess.Process, str]:
    code = (
        "import asyncio, sys; from routing._gateway_server import serve; "
        "asyncio.run(serve(sys.argv[1], '127.0.0.1', 0))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"gateway did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def _post(session: aiohttp.ClientSession, url: str, door: str, provider: str) -> Post:
    path, body = DOORS[door]
    headers = {"X-Routing-Provider": provider}

    async def post() -> None:
        async with session.post(url + path, json=body, headers=headers) as resp:
            assert resp.status == 200, (door, resp.status, await resp.text())
            await resp.read()

    return post


def _stream(
    session: aiohttp.ClientSession, url: str, door: str, provider: str
) -> Callable[[], Awaitable[tuple[float, float]]]:
    path, body = DOORS[door]
    headers = {"X-Routing-Provider": provider}
    marker = b'"text_delta"' if door == "anthropic" else b'"content":"'

    async def stream() -> tuple[float, float]:
        started = time.perf_counter()
        first = 0.0
        async with session.post(url + path, json={**body, "stream": True}, headers=headers) as resp:
            assert resp.status == 200, (door, resp.status)
            async for line in resp.content:
                if not first and marker in line:
                    first = time.perf_counter() - started
        return first, time.perf_counter() - started

    return stream


async def _latency(post: Post, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await post()
        out.append(time.perf_counter() - started)
    return out


async def _throughput(post: Post, total: int, workers: int) -> float:
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await post()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return total / (time.perf_counter() - started)


async def _measure(
    session: aiohttp.ClientSession,
    url: str,
    provider: str,
    sequential: int,
    concurrent: int,
    streams: int,
    rounds: int,
) -> dict[str, dict[str, float]]:
    """The figures of both doors over ``provider``, measured in alternating slices."""
    lat: dict[str, list[float]] = {d: [] for d in DOORS}
    rps: dict[str, list[float]] = {d: [] for d in DOORS}
    first: dict[str, list[float]] = {d: [] for d in DOORS}
    whole: dict[str, list[float]] = {d: [] for d in DOORS}
    for door in DOORS:  # warm connections and the router's probes
        await _latency(_post(session, url, door, provider), 5)
    for _ in range(rounds):
        for door in DOORS:
            post = _post(session, url, door, provider)
            lat[door] += await _latency(post, sequential // rounds)
            rps[door].append(await _throughput(post, concurrent // rounds, 16))
            stream = _stream(session, url, door, provider)
            for _ in range(streams // rounds):
                a, b = await stream()
                first[door].append(a)
                whole[door].append(b)
    return {
        door: {
            "latency_ms": statistics.median(lat[door]) * 1000,
            "throughput_rps": statistics.median(rps[door]),
            "first_text_ms": statistics.median(first[door]) * 1000,
            "stream_ms": statistics.median(whole[door]) * 1000,
        }
        for door in DOORS
    }


ROWS = (
    ("latency_ms", "median latency, c=1 (ms)"),
    ("throughput_rps", "throughput, c=16 (req/s)"),
    ("first_text_ms", "stream: first text (ms)"),
    ("stream_ms", "stream: to the end (ms)"),
)


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """The markdown table: per backend and measure, both doors and Anthropic / OpenAI."""
    lines = [
        "| backend | measure | OpenAI door | Anthropic door | ratio (Anthropic / OpenAI) |",
        "|---|---|---|---|---|",
    ]
    for backend, figures in results.items():
        for key, label in ROWS:
            a, b = figures["openai"][key], figures["anthropic"][key]
            lines.append(f"| {backend} | {label} | {a:.2f} | {b:.2f} | {b / a:.2f}x |")
    return "\n".join(lines)


async def main(quick: bool) -> int:
    sequential, concurrent, streams, rounds = (20, 80, 8, 2) if quick else (400, 2000, 120, 4)
    fakes = {"lmstudio": FakeProcess("lmstudio", MODEL), "llamacpp": FakeProcess("llamacpp", MODEL)}
    gateway = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for fake in fakes.values():
                await fake.start()
            config = Path(tmp) / "doors.yaml"
            config.write_text(
                "version: 1\ndefaults:\n  probe: {timeout: 1, ttl: 3600}\nproviders:\n"
                + "".join(
                    f"  {kind}:\n    api: openai\n    kind: {kind}\n    instances:\n"
                    f'      bench: {{url: "{fake.url}"}}\n'
                    for kind, fake in fakes.items()
                ),
                "utf-8",
            )
            gateway, url = await _gateway(config)
            results = {}
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(connector=connector) as session:
                for kind, how in (("lmstudio", "translated"), ("llamacpp", "passed through")):
                    results[f"{kind} ({how})"] = await asyncio.wait_for(
                        _measure(session, url, kind, sequential, concurrent, streams, rounds), 600
                    )
        finally:
            if gateway is not None and gateway.returncode is None:
                gateway.terminate()
                await gateway.wait()
            for fake in fakes.values():
                await fake.kill()
    print(table(results))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few requests only (smoke)")
    sys.exit(asyncio.run(main(parser.parse_args().quick)))
