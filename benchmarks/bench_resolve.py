"""Resolve benchmarks: warm-cache scaling (100 vs 1,000 instances, 200 rules) and a cold
fan-out over 1,000 fake instances of which 100 hang.

Run: ``python benchmarks/bench_resolve.py`` (loopback only, bounded; prints ratios).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from routing._decision import State
from routing._engine import Router
from routing._health import ProbeResult
from routing.config import parse_config
from routing.errors import NoRouteError

RULES = 200
PER_PROVIDER = 5
CALLS = 20_000


def _config_text(
    instances: int, rules: int, ports: list[int] | None = None, probe_timeout: float = 1.0
) -> str:
    lines = [
        "version: 1",
        f"defaults: {{probe: {{timeout: {probe_timeout}, ttl: 3600}}}}",
        "providers:",
    ]
    providers = instances // PER_PROVIDER
    for p in range(providers):
        lines += [f"  p{p}:", "    api: openai", "    kind: llamacpp", "    instances:"]
        for i in range(PER_PROVIDER):
            n = p * PER_PROVIDER + i
            port = ports[n] if ports else 20000 + n
            lines.append(f"      i{i}: {{port: {port}}}")
    lines.append("rules:")
    for r in range(rules):
        lines.append(f"  - match: {{model: 'family{r}-*'}}")
        lines.append(f"    route: p{r % providers}")
    lines.append("  - route: [" + ", ".join(f"p{p}" for p in range(providers)) + "]")
    return "\n".join(lines) + "\n"


def _model(key: str) -> str:
    return f"model-{key.replace(':', '-')}"


async def _warm(instances: int, calls: int = CALLS) -> dict[str, float]:
    cfg = parse_config(_config_text(instances, RULES), environ={})
    router = Router(cfg)
    now = router.clock()
    providers = instances // PER_PROVIDER
    # Warm the cache: every instance READY, each serving two families' models.
    for key, health in router._health.items():
        p = int(key.split(":")[0][1:])
        fams = [f"family{r}-coder" for r in range(p, RULES, providers)]
        health.record(ProbeResult(State.READY, (_model(key), *fams), at=now))
    rng = random.Random(42)
    models = [f"family{rng.randrange(RULES)}-coder" for _ in range(512)]
    for m in models:  # first-seen costs (rule memo) out of the timed loop
        await router.resolve(model=m)
    samples = []
    gc.disable()
    try:
        for i in range(calls):
            m = models[i % len(models)]
            t0 = time.perf_counter_ns()
            await router.resolve(model=m)
            samples.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    await router.aclose()
    samples.sort()
    return {
        "median_us": statistics.median(samples) / 1000,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
    }


def _start_fleet(
    instances: int, hanging: int, tmp: Path
) -> tuple[subprocess.Popen[str], list[int]]:
    """The fakes run in their own process, as real backends do (and on the other core)."""
    every = instances // hanging
    specs = [
        {
            "name": f"f{i}",
            "kind": "llamacpp",
            "models": [f"m{i}.gguf"],
            "fault": "hang" if i % every == 0 else "none",
        }
        for i in range(instances)
    ]
    fleet_file = tmp / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump({"servers": specs}), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fake_servers", "fleet", str(fleet_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    ports: dict[str, int] = {}
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    try:
        for line in proc.stdout:  # bounded: one line per server, then "fleet ready"
            if line.strip() == "fleet ready" or time.monotonic() > deadline:
                break
            name, _, url = line.strip().partition(" listening on ")
            ports[name] = int(url.rsplit(":", 1)[1])
        return proc, [ports[f"f{i}"] for i in range(instances)]
    except BaseException:  # Ctrl-C or a short fleet: do not leave the fleet running
        proc.kill()
        proc.wait()
        raise


async def _cold(ports: list[int], probe_timeout: float) -> dict[str, Any]:
    cfg = parse_config(_config_text(len(ports), 0, ports, probe_timeout), environ={})
    async with Router(cfg) as router:
        target = f"m{len(ports) - 1}.gguf"
        t0 = time.perf_counter()
        try:
            decision = await router.resolve(model=target)
            chosen, trace = decision.instance, decision.trace
        except NoRouteError as exc:  # reported, not raised: a loaded machine may get here
            chosen, trace = "no route", tuple(exc.candidates)
        elapsed = time.perf_counter() - t0
        states = [c.state for c in trace]
        t1 = time.perf_counter()
        with contextlib.suppress(NoRouteError):
            await router.resolve(model=target)
        warm = time.perf_counter() - t1
    return {
        "elapsed_s": elapsed,
        "ratio_to_timeout": elapsed / probe_timeout,
        "down": states.count(State.DOWN),
        "ready": states.count(State.READY),
        "chosen": chosen,
        "warm_after_s": warm,
    }


def measure(
    calls: int = CALLS, fleet: int = 1000, hanging: int = 100, probe_timeout: float = 1.0
) -> dict[str, Any]:
    """Warm resolve at 100 and 1,000 instances, then a cold resolve over a fleet of fakes.

    Returns ``{"calls", "warm": {100: {...}, 1000: {...}}, "ratio", "fleet", "hanging",
    "probe_timeout", "fleet_start_s", "cold": {...}}``.
    """
    small = asyncio.run(_warm(100, calls))
    large = asyncio.run(_warm(1000, calls))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc, ports = _start_fleet(fleet, hanging, Path(tmp))
        started = time.perf_counter() - t0
        try:
            cold = asyncio.run(_cold(ports, probe_timeout=probe_timeout))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {
        "calls": calls,
        "warm": {100: small, 1000: large},
        "ratio": large["median_us"] / small["median_us"],
        "fleet": fleet,
        "hanging": hanging,
        "probe_timeout": probe_timeout,
        "fleet_start_s": started,
        "cold": cold,
    }


def main() -> int:
    r = measure()
    small, large, cold = r["warm"][100], r["warm"][1000], r["cold"]
    print(f"warm resolve, {RULES} rules, {r['calls']} calls each")
    print(f"  100 instances:   median {small['median_us']:.1f} us  p99 {small['p99_us']:.1f} us")
    print(f"  1000 instances:  median {large['median_us']:.1f} us  p99 {large['p99_us']:.1f} us")
    print(f"  ratio 1000/100:  {r['ratio']:.2f}x (instance count ratio 10x; target median < 50 us)")
    print(
        f"cold resolve over {r['fleet']} fake llama.cpp instances, {r['hanging']} hanging, "
        f"probe timeout {r['probe_timeout']} s"
    )
    print(
        f"  elapsed {cold['elapsed_s']:.3f} s = {cold['ratio_to_timeout']:.2f} x probe timeout "
        f"(target < 1.5x); {cold['ready']} READY, {cold['down']} DOWN; chose {cold['chosen']}"
    )
    print(
        f"  (fleet process up in {r['fleet_start_s']:.2f} s; next resolve "
        f"{cold['warm_after_s'] * 1000:.2f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
