"""Soak: 10,000 requests at concurrency 64 through ``router.chat`` over three fake llama.cpp
servers while one of them is killed (SIGKILL) and restarted every few seconds.

Run: ``python benchmarks/soak.py``. Loopback only, bounded to about 60 s. Every request must
either be answered by an instance serving the model or fail with a typed routing error
before its first byte; anything else is "lost". Prints the count of each outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fakeproc import FakeProcess

from routing._engine import Router
from routing.config import parse_config
from routing.errors import RoutingError

MODEL = "soak.gguf"
MESSAGES = [{"role": "user", "content": "hi"}]
TOTAL = 10_000
CONCURRENCY = 64
BUDGET = 60.0  # seconds
KILL_EVERY = 2.0  # seconds up, then down for DOWN_FOR
DOWN_FOR = 1.0
PORT = re.compile(r"port (\d+)$")


async def chaos(victim: FakeProcess, stop: asyncio.Event, log: Counter[str]) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), KILL_EVERY)
        if stop.is_set():
            return
        await victim.kill()
        log["kills"] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), DOWN_FOR)
        await victim.start()
        log["restarts"] += 1


async def measure(
    total: int = TOTAL, concurrency: int = CONCURRENCY, budget: float = BUDGET
) -> dict[str, Any]:
    """Run the soak; return outcome counts, failovers, chaos counts, ``lost`` and timings."""
    fakes = [await FakeProcess("llamacpp", MODEL).start() for _ in range(3)]
    by_port = {f.port: f"llamacpp:f{i}" for i, f in enumerate(fakes)}
    instances = "".join(f"      f{i}: {{port: {f.port}}}\n" for i, f in enumerate(fakes))
    config = parse_config(
        "version: 1\ndefaults:\n  connect_timeout: 0.5\n  request_timeout: 10\n"
        "  retries: 2\n  probe: {timeout: 0.5, ttl: 1}\n"
        "providers:\n  llamacpp:\n    api: openai\n    instances:\n" + instances,
        environ={},
    )
    outcomes: Counter[str] = Counter()
    failovers: Counter[int] = Counter()
    chaos_log: Counter[str] = Counter()
    stop = asyncio.Event()
    left = total
    started = time.perf_counter()

    async def worker(router: Router) -> None:
        nonlocal left
        while left > 0 and time.perf_counter() - started < budget:
            left -= 1
            try:
                done = await router.complete({"messages": MESSAGES, "model": MODEL})
            except RoutingError as exc:
                outcomes[f"typed error {type(exc).__name__}"] += 1
                continue
            except Exception as exc:  # anything untyped is a lost request
                outcomes[f"LOST {type(exc).__name__}: {exc}"] += 1
                continue
            match = PORT.search(done.reply["choices"][0]["message"]["content"] or "")
            answered = by_port.get(int(match.group(1))) if match else None
            if answered is None or answered != done.decision.instance:
                outcomes["LOST answer from an unexpected instance"] += 1
            elif done.reply.get("model") != MODEL:
                outcomes["LOST answer from another model"] += 1
            else:
                outcomes[f"ok {answered}"] += 1
                failovers[done.failovers] += 1

    try:
        async with Router(config) as router:
            monkey = asyncio.create_task(chaos(fakes[0], stop, chaos_log))
            await asyncio.gather(*(worker(router) for _ in range(concurrency)))
            stop.set()
            await monkey
    finally:
        for fake in fakes:
            await fake.kill()
    seconds = time.perf_counter() - started
    sent = sum(outcomes.values())
    lost = sum(n for k, n in outcomes.items() if k.startswith("LOST"))
    return {
        "total": total,
        "concurrency": concurrency,
        "sent": sent,
        "seconds": seconds,
        "outcomes": dict(outcomes),
        "failovers": dict(failovers),
        "kills": chaos_log["kills"],
        "restarts": chaos_log["restarts"],
        "lost": lost,
        "not_sent": total - sent,
    }


async def main() -> int:
    r = await measure()
    sent, seconds = r["sent"], r["seconds"]
    print(
        f"soak: {sent} requests in {seconds:.1f} s at concurrency {r['concurrency']} "
        f"({sent / seconds:.0f} req/s); {r['kills']} kills, "
        f"{r['restarts']} restarts of llamacpp:f0"
    )
    for outcome, n in sorted(r["outcomes"].items()):
        print(f"  {n:6d}  {outcome}")
    print(
        "  failovers per answered request: "
        + ", ".join(f"{k}: {n}" for k, n in sorted(r["failovers"].items()))
    )
    print(f"  lost: {r['lost']}; not sent (time budget): {r['not_sent']}")
    return 1 if r["lost"] else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
