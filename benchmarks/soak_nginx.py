"""Soak through a real nginx and two ``routing serve`` replicas, one killed and restarted midway.

Run: ``python benchmarks/soak_nginx.py [--requests 20000] [--concurrency 16] [--workers 1]``.

Two fake llama.cpp servers (child processes) serve the model; two replicas of ``routing serve``
(child processes, each ``--workers N``) route to them; nginx (deploy/nginx/routing.conf, see
benchmarks/_nginx.py) balances over the replicas.  The client sends non-stream chat requests
at a fixed concurrency.  When half are done, replica 0 is SIGKILLed (no clean shutdown: its
in-flight requests and open connections die with it) and started again on the same port.

Lost = a request whose answer is not a 200 with a reply (an error status or a broken
connection at the client).  nginx resends a request that failed at a replica before any byte
reached the client (``proxy_next_upstream error timeout non_idempotent``), so the target is
0.  Prints the counts (sent, ok, lost, retried by nginx, per replica) and exits 1 on any loss,
2 when nginx is not installed.  Loopback only, bounded by ``DEADLINE``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _fakeproc import FakeProcess  # noqa: E402
from _nginx import Nginx, nginx_binary  # noqa: E402

MODEL = "soak.gguf"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
DEADLINE = 600.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Replica:
    """``routing serve CONFIG --port PORT --workers N`` as a child process."""

    def __init__(self, config: Path, port: int, workers: int) -> None:
        self.config, self.port, self.workers = config, port, workers
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start it and wait for its ``listening on`` line."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "routing.cli",
            "serve",
            str(self.config),
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 60)).decode()
        if not line.startswith("listening on "):
            raise RuntimeError(f"replica on {self.port} did not start: {line!r}")

    async def kill(self) -> None:
        """SIGKILL it (every worker too: they stop when their parent is gone) and reap it."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM it and reap it (SIGKILL after 20 s)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                await self.kill()


async def soak(requests: int, concurrency: int, workers: int) -> dict[str, object]:
    """Run the soak; return its counts."""
    fakes = [FakeProcess("llamacpp", MODEL) for _ in range(2)]
    replicas: list[Replica] = []
    nginx: Nginx | None = None
    with tempfile.TemporaryDirectory(prefix="soak-nginx-") as tmp:
        try:
            for fake in fakes:
                await fake.start()
            config = Path(tmp) / "routing.yaml"
            instances = "".join(f'      f{i}: {{url: "{f.url}"}}\n' for i, f in enumerate(fakes))
            config.write_text(
                "version: 1\ndefaults: {strategy: round-robin}\nproviders:\n"
                f"  llamacpp:\n    api: openai\n    instances:\n{instances}",
                encoding="utf-8",
            )
            replicas = [Replica(config, _free_port(), workers) for _ in range(2)]
            await asyncio.gather(*(r.start() for r in replicas))
            nginx = await asyncio.to_thread(
                Nginx, Path(tmp) / "nginx", _free_port(), [r.port for r in replicas]
            )
            return await _load(nginx.url, replicas, requests, concurrency)
        finally:
            if nginx is not None:
                await asyncio.to_thread(nginx.stop)
            await asyncio.gather(*(r.stop() for r in replicas))
            for fake in fakes:
                await fake.kill()


async def _load(
    url: str, replicas: list[Replica], requests: int, concurrency: int
) -> dict[str, object]:
    counts: collections.Counter[str] = collections.Counter()
    upstreams: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    issued = 0
    half = asyncio.Event()
    restarted = asyncio.Event()
    started = time.perf_counter()

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal issued
        # Past ``requests`` only until replica 0 is back (a short smoke run waits for it).
        while issued < requests or not restarted.is_set():
            issued += 1
            if issued == requests // 2:
                half.set()
            try:
                async with session.post(f"{url}/v1/chat/completions", json=BODY) as reply:
                    body = await reply.json()
                    ok = reply.status == 200 and bool(body.get("choices"))
                    upstream = reply.headers.get("X-Upstream", "?")
                    if not ok:
                        errors[f"status {reply.status}"] += 1
            except (aiohttp.ClientError, ValueError) as exc:
                ok, upstream = False, "-"
                errors[type(exc).__name__] += 1
            counts["ok" if ok else "lost"] += 1
            if "," in upstream:
                counts["retried by nginx"] += 1
            upstreams[upstream.rsplit(", ", 1)[-1]] += 1
            if restarted.is_set() and upstream.endswith(f":{replicas[0].port}"):
                counts["answered by the restarted replica"] += 1

    async def chaos() -> None:
        await half.wait()
        await replicas[0].kill()
        counts["killed at"] = issued
        await replicas[0].start()
        counts["restarted at"] = issued
        restarted.set()

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        chaos_task = asyncio.get_running_loop().create_task(chaos())
        await asyncio.wait_for(
            asyncio.gather(*(client(session) for _ in range(concurrency))), DEADLINE
        )
        await asyncio.wait_for(chaos_task, 60)
    elapsed = time.perf_counter() - started
    return {
        "sent": issued,
        **counts,
        "per replica": dict(upstreams),
        "errors": dict(errors),
        "seconds": round(elapsed, 1),
        "req/s": round(issued / elapsed),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the soak, print its counts; exit 1 on any lost request, 2 without nginx."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="--workers of each replica")
    args = parser.parse_args(argv)
    if nginx_binary() is None:
        print("nginx is not installed (Debian: apt-get install nginx-light)")
        return 2
    result = asyncio.run(soak(args.requests, args.concurrency, args.workers))
    for key, value in result.items():
        print(f"{key}: {value}")
    lost = int(result.get("lost", 0))  # type: ignore[call-overload]
    print("PASS: 0 lost" if lost == 0 else f"FAIL: {lost} lost")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
