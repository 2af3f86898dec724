"""Run every benchmark of the project in one go and write a Markdown report.

Run: ``python benchmarks/run.py [--out benchmarks/out] [--quick] [--only resolve,library]``.

Sections (``--only`` takes a comma-separated subset): ``resolve`` (warm resolve scaling and
the cold probe fan-out, bench_resolve.py), ``library`` (router.chat vs direct aiohttp,
bench_chat_overhead.py), ``gateway`` (gateway vs direct, RSS of ``routing serve``, import time,
bench_gateway.py), ``soak`` (soak.py), ``faults`` (``routing serve`` under faults, kills and
reloads, soak_faults.py) and ``compare`` (median latency against concurrency for
direct aiohttp / routing / LiteLLM's Router, when ``litellm`` is installed, on the same fake
llama.cpp). Writes ``OUT/report.md`` and ``OUT/latency_vs_concurrency.png`` (when matplotlib
is installed). Loopback only, port 0, bounded counts; ``--quick`` shrinks every count so the
whole run takes well under a minute. Every fake and server is a child process stopped before
its section returns, on errors and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# LiteLLM must never phone home: local cost map, no telemetry, offline mode, and only
# 127.0.0.1 URLs (no proxy for loopback). Set before anything imports litellm (and inherited
# by the child that times ``import litellm``).
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_TELEMETRY"] = "False"
os.environ["LITELLM_OFFLINE_MODE"] = "true"
os.environ["LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS"] = "True"
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), "127.0.0.1", "localhost"]))

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import aiohttp  # noqa: E402
import bench_chat_overhead  # noqa: E402
import bench_gateway  # noqa: E402
import bench_resolve  # noqa: E402
import soak  # noqa: E402
import soak_faults  # noqa: E402
from _fakeproc import FakeProcess  # noqa: E402
from _soak_chaos import kill_leftovers  # noqa: E402

from routing._engine import Router  # noqa: E402
from routing.config import parse_config  # noqa: E402

SECTIONS = ("resolve", "library", "gateway", "soak", "faults", "compare")
LEVELS = (1, 4, 8, 16, 32)
MODEL = bench_chat_overhead.MODEL  # the same model and prompt on every side compared
MESSAGES = bench_chat_overhead.MESSAGES

Call = Callable[[], Awaitable[object]]


@dataclass
class Sizes:
    """Every count of the run; ``quick()`` shrinks them for the smoke test."""

    resolve_calls: int = 20_000
    fleet: int = 1000
    hanging: int = 100
    probe_timeout: float = 1.0
    lib_sequential: int = 2000
    lib_concurrent: int = 6000
    gw_sequential: int = 500
    gw_concurrent: int = 3000
    gw_streams: int = 200
    import_runs: int = 5
    soak_total: int = 10_000
    soak_budget: float = 60.0
    faults_requests: int = soak_faults.REQUESTS
    faults_seconds: float = soak_faults.SECONDS
    cmp_c1: int = 200
    cmp_cn: int = 400
    cmp_warmup: int = 30

    @classmethod
    def quick(cls) -> Sizes:
        """Counts small enough for the whole run to take well under a minute."""
        return cls(
            resolve_calls=2000,
            fleet=200,
            hanging=20,
            probe_timeout=1.0,
            lib_sequential=200,
            lib_concurrent=640,
            gw_sequential=100,
            gw_concurrent=400,
            gw_streams=30,
            import_runs=2,
            soak_total=3000,
            soak_budget=8.0,
            faults_requests=300,
            faults_seconds=5.0,
            cmp_c1=20,
            cmp_cn=64,
            cmp_warmup=5,
        )


@dataclass
class Run:
    """Results and errors of the sections run so far."""

    quick: bool
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    elapsed: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False


# ---------------------------------------------------------------- compare (LiteLLM) section


def litellm_available() -> bool:
    """True when ``import litellm`` would find it."""
    return importlib.util.find_spec("litellm") is not None


async def _at_concurrency(call: Call, total: int, concurrency: int) -> dict[str, float]:
    """``total`` calls by ``concurrency`` workers: median/p90 latency (ms), req/s and this
    process's CPU time per call (ms; the fake runs in a child, so this is the client side)."""
    samples: list[float] = []
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - started)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    samples.sort()
    return {
        "median_ms": statistics.median(samples) * 1000,
        "p90_ms": samples[int(len(samples) * 0.9)] * 1000,
        "rps": total / elapsed,
        "cpu_ms": cpu / total * 1000,
    }


def _litellm_router(fake_url: str) -> tuple[Any, Call]:
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    router = litellm.Router(
        model_list=[
            {
                "model_name": MODEL,
                "litellm_params": {
                    "model": f"openai/{MODEL}",
                    "api_base": fake_url + "/v1",
                    "api_key": "sk-fake",
                },
            }
        ]
    )

    async def call() -> object:
        return await router.acompletion(model=MODEL, messages=MESSAGES)

    return router, call


async def compare(sizes: Sizes, with_litellm: bool) -> dict[str, Any]:
    """Direct aiohttp, routing's ``router.chat`` and (optionally) LiteLLM's Router against
    one fake llama.cpp at each concurrency of ``LEVELS``."""
    fake = await FakeProcess("llamacpp", MODEL).start()
    config = parse_config(
        "version: 1\ndefaults:\n  probe: {timeout: 1, ttl: 3600}\nproviders:\n"
        f"  llamacpp:\n    api: openai\n    instances:\n      a: {{port: {fake.port}}}\n",
        environ={},
    )
    url = fake.url + "/v1/chat/completions"
    rows: dict[int, dict[str, dict[str, float]]] = {}
    lite_router: Any = None
    try:
        async with (
            Router(config) as router,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        ):
            direct, routed = bench_chat_overhead.chat_clients(router, session, url)
            clients: dict[str, Call] = {"direct": direct, "routing": routed}
            if with_litellm:
                lite_router, clients["litellm"] = _litellm_router(fake.url)
            for call in clients.values():  # warm up connections, probes, caches
                await _at_concurrency(call, sizes.cmp_warmup, 1)
            for level in LEVELS:
                total = sizes.cmp_c1 if level == 1 else sizes.cmp_cn
                rows[level] = {
                    name: await _at_concurrency(call, total, level)
                    for name, call in clients.items()
                }
    finally:
        if lite_router is not None:
            await _close_litellm(lite_router)
        await fake.kill()
    counts = {c: sizes.cmp_c1 if c == 1 else sizes.cmp_cn for c in LEVELS}
    return {"levels": rows, "counts": counts, "litellm": with_litellm}


async def _close_litellm(router: Any) -> None:
    """Best effort: close LiteLLM's cached HTTP clients so no socket outlives the section."""
    try:
        import litellm

        closer = getattr(litellm, "close_litellm_async_clients", None)
        if closer is not None:
            await closer()
    except Exception:
        pass
    del router


def litellm_import_ms(runs: int) -> dict[str, Any]:
    """``python -c "import litellm"`` wall time, best of ``runs``, and its version."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import litellm"],
            check=True,
            timeout=120,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        best = min(best, time.perf_counter() - started)
    version = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    return {"import_ms": best * 1000, "version": version}


# ---------------------------------------------------------------------------- the sections


def run_resolve(sizes: Sizes) -> dict[str, Any]:
    """bench_resolve.measure with the run's sizes."""
    return bench_resolve.measure(
        calls=sizes.resolve_calls,
        fleet=sizes.fleet,
        hanging=sizes.hanging,
        probe_timeout=sizes.probe_timeout,
    )


def run_library(sizes: Sizes) -> dict[str, Any]:
    """bench_chat_overhead.measure with the run's sizes."""
    return asyncio.run(
        bench_chat_overhead.measure(
            sequential=sizes.lib_sequential, concurrent=sizes.lib_concurrent
        )
    )


def run_gateway(sizes: Sizes) -> dict[str, Any]:
    """bench_gateway.measure and import_time with the run's sizes."""
    out = asyncio.run(
        bench_gateway.measure(
            sequential=sizes.gw_sequential, concurrent=sizes.gw_concurrent, streams=sizes.gw_streams
        )
    )
    out["imports"] = bench_gateway.import_time(runs=sizes.import_runs)
    return out


def run_soak(sizes: Sizes) -> dict[str, Any]:
    """soak.measure with the run's sizes."""
    return asyncio.run(soak.measure(total=sizes.soak_total, budget=sizes.soak_budget))


def run_faults(sizes: Sizes) -> dict[str, Any]:
    """soak_faults.measure with the run's sizes."""
    try:
        return asyncio.run(
            soak_faults.measure(requests=sizes.faults_requests, seconds=sizes.faults_seconds)
        )
    finally:
        kill_leftovers()  # only after a second Ctrl-C cut the clean stop short


def run_compare(sizes: Sizes) -> dict[str, Any]:
    """The latency-vs-concurrency comparison, plus ``import litellm`` time when installed."""
    with_litellm = litellm_available()
    out = asyncio.run(compare(sizes, with_litellm))
    if with_litellm:
        out["litellm_import"] = litellm_import_ms(max(1, sizes.import_runs // 2))
    return out


RUNNERS: dict[str, Callable[[Sizes], dict[str, Any]]] = {
    "resolve": run_resolve,
    "library": run_library,
    "gateway": run_gateway,
    "soak": run_soak,
    "faults": run_faults,
    "compare": run_compare,
}


# ------------------------------------------------------------------------------- the report


def _verdict(ok: bool) -> str:
    return "pass" if ok else "**miss**"


def _table(rows: list[tuple[str, str, str, str]]) -> list[str]:
    out = ["| Measure | Value | Target | Result |", "|---|---:|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return [*out, ""]


def _versions() -> str:
    import importlib.metadata as md

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "routing"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", []
    return (
        f"{os.cpu_count()} cores, {platform.machine()} {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; aiohttp "
        f"{version('aiohttp')}; litellm {version('litellm')}; matplotlib "
        f"{version('matplotlib')}; routing at {commit or 'unknown'}"
        f"{f' with {len(dirty)} uncommitted routing/ file(s)' if dirty else ''}; "
        f"{datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}"
    )


def _resolve_md(r: dict[str, Any]) -> list[str]:
    small, large, cold = r["warm"][100], r["warm"][1000], r["cold"]
    out = [
        f"## Resolve scaling (warm cache, {bench_resolve.RULES} rules, {r['calls']} calls each)",
        "",
    ]
    out += _table(
        [
            (
                "median, 100 instances",
                f"{small['median_us']:.2f} µs",
                "< 50 µs",
                _verdict(small["median_us"] < 50),
            ),
            (
                "median, 1000 instances",
                f"{large['median_us']:.2f} µs",
                "< 50 µs",
                _verdict(large["median_us"] < 50),
            ),
            (
                "p99, 100 / 1000 instances",
                f"{small['p99_us']:.2f} / {large['p99_us']:.2f} µs",
                "—",
                "—",
            ),
            (
                "ratio 1000 / 100 (median)",
                f"{r['ratio']:.2f}×",
                "far below 10× (instance ratio); pass if < 2×",
                _verdict(r["ratio"] < 2),
            ),
        ]
    )
    out += [
        f"## Probe fan-out (cold resolve, {r['fleet']} fake llama.cpp, {r['hanging']} hanging)",
        "",
    ]
    out += _table(
        [
            ("cold resolve", f"{cold['elapsed_s']:.3f} s", "—", "—"),
            (
                "ratio to probe timeout",
                f"{cold['ratio_to_timeout']:.2f}× of {r['probe_timeout']} s",
                "< 1.5×",
                _verdict(cold["ratio_to_timeout"] < 1.5),
            ),
            (
                "candidates READY / DOWN",
                f"{cold['ready']} / {cold['down']}",
                f"{r['fleet'] - r['hanging']} / {r['hanging']} (only the hanging ones DOWN)",
                _verdict(cold["ready"] == r["fleet"] - r["hanging"])
                + (
                    ""
                    if cold["ready"] == r["fleet"] - r["hanging"]
                    else " (healthy fakes missed the probe timeout: "
                    "a loaded machine starves the fleet)"
                ),
            ),
            ("chosen", f"`{cold['chosen']}`", "—", "—"),
            ("next (warm) resolve", f"{cold['warm_after_s'] * 1000:.2f} ms", "—", "—"),
        ]
    )
    return out


def _library_md(r: dict[str, Any]) -> list[str]:
    out = [
        f"## Library overhead (router.chat vs direct aiohttp, {r['sequential']} sequential, "
        f"{r['concurrent']} at c={r['concurrency']})",
        "",
    ]
    return out + _table(
        [
            (
                "c=1 median direct / router.chat",
                f"{r['direct_median_ms']:.3f} / {r['routed_median_ms']:.3f} ms",
                "—",
                "—",
            ),
            (
                "c=1 added median",
                f"{r['added_median_ms']:+.3f} ms",
                "< 0.3 ms",
                _verdict(r["added_median_ms"] < 0.3),
            ),
            ("c=1 added mean", f"{r['added_mean_ms']:+.3f} ms", "—", "—"),
            (
                f"c={r['concurrency']} direct / router.chat",
                f"{r['direct_rps']:.0f} / {r['routed_rps']:.0f} req/s",
                "—",
                "—",
            ),
            (
                f"c={r['concurrency']} throughput ratio",
                f"{r['throughput_ratio']:.1%}",
                "≥ 60% of direct",
                _verdict(r["throughput_ratio"] >= 0.6),
            ),
        ]
    )


def _gateway_md(r: dict[str, Any]) -> list[str]:
    n, m, t = r["network"], r["memory"], r["imports"]
    out = [
        f"## Gateway vs direct (aiohttp client; {n['sequential']} sequential, "
        f"{n['concurrent']} at c={n['concurrency']}, {n['streams']} streams)",
        "",
    ]
    out += _table(
        [
            (
                "c=1 median direct / gateway",
                f"{n['direct_median_ms']:.2f} / {n['gateway_median_ms']:.2f} ms",
                "—",
                "—",
            ),
            (
                "c=1 added median",
                f"{n['added_median_ms']:+.2f} ms",
                "< 1 ms",
                _verdict(n["added_median_ms"] < 1),
            ),
            (
                f"c={n['concurrency']} direct / gateway",
                f"{n['direct_rps']:.0f} / {n['gateway_rps']:.0f} req/s",
                "—",
                "—",
            ),
            (
                f"c={n['concurrency']} throughput ratio",
                f"{n['throughput_ratio']:.1%}",
                "≥ 50% of direct",
                _verdict(n["throughput_ratio"] >= 0.5),
            ),
            (
                "stream first chunk direct / gateway",
                f"{n['direct_ttfc_ms']:.2f} / {n['gateway_ttfc_ms']:.2f} ms",
                "—",
                "—",
            ),
            (
                "stream TTFC ratio (added)",
                f"{n['ttfc_ratio']:.2f}× ({n['ttfc_added_ms']:+.2f} ms)",
                "— (no issue target)",
                "—",
            ),
        ]
    )
    out += [f"## Memory (`routing serve` with {m['instances']} instances)", ""]
    out += _table(
        [
            (
                "RSS after start",
                f"{m['rss_start_mb']:.1f} MB",
                "< 100 MB",
                _verdict(m["rss_start_mb"] < 100),
            ),
            (
                "RSS after /status",
                f"{m['rss_after_status_mb']:.1f} MB",
                "< 100 MB",
                _verdict(m["rss_after_status_mb"] < 100),
            ),
        ]
    )
    out += ["## Import time (best of runs, wall time of a fresh interpreter)", ""]
    out += _table(
        [
            (
                "`python -c 'import routing'`",
                f"{t['import_routing_ms']:.0f} ms",
                "< 150 ms",
                _verdict(t["import_routing_ms"] < 150),
            ),
            (
                "bare interpreter / import itself",
                f"{t['bare_ms']:.0f} / {t['import_itself_ms']:.0f} ms",
                "—",
                "—",
            ),
        ]
    )
    return out


def _soak_md(r: dict[str, Any]) -> list[str]:
    out = [
        f"## Soak ({r['sent']} of {r['total']} requests at concurrency {r['concurrency']} "
        f"in {r['seconds']:.1f} s, {r['kills']} kills / {r['restarts']} restarts of "
        "llamacpp:f0)",
        "",
    ]
    rows = [(f"outcome: {k}", str(v), "—", "—") for k, v in sorted(r["outcomes"].items())]
    rows.append(
        (
            "failovers per answered request",
            ", ".join(f"{k}: {v}" for k, v in sorted(r["failovers"].items())),
            "—",
            "—",
        )
    )
    rows.append(("not sent (time budget)", str(r["not_sent"]), "—", "—"))
    rows.append(("lost", str(r["lost"]), "= 0", _verdict(r["lost"] == 0)))
    return out + _table(rows)


def _compare_md(r: dict[str, Any], chart: str) -> list[str]:
    names = ["direct", "routing"] + (["litellm"] if r["litellm"] else [])
    label = {
        "direct": "direct aiohttp",
        "routing": "routing router.chat",
        "litellm": "LiteLLM Router",
    }
    out = ["## Latency against concurrency: direct / routing / LiteLLM (same fake llama.cpp)", ""]
    if not r["litellm"]:
        out += [
            "LiteLLM is not installed (`pip install 'routing[bench]'`): its columns are skipped.",
            "",
        ]
    head = ["c", "requests"] + [f"{label[n]} median ms" for n in names]
    head += [f"{label[n]} req/s" for n in names]
    out += ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for level, row in sorted(r["levels"].items()):
        cells = [str(level), str(r["counts"][level])]
        cells += [f"{row[n]['median_ms']:.2f}" for n in names]
        cells += [f"{row[n]['rps']:.0f}" for n in names]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    if r["litellm"]:
        per = [
            row["litellm"]["median_ms"] / row["routing"]["median_ms"]
            for row in r["levels"].values()
        ]
        out += [
            f"LiteLLM median latency is {min(per):.1f}×–{max(per):.1f}× routing's "
            "across these levels.",
            "",
        ]
    cpu = r["levels"][1]
    out += [
        "Client-process CPU per request at c=1 (the fake runs in a child process): "
        + ", ".join(f"{label[n]} {cpu[n]['cpu_ms']:.2f} ms" for n in names)
        + ". Where CPU per request is close to the c=1 latency, the client library's own "
        "work is the bottleneck and throughput stays flat as concurrency grows.",
        "",
    ]
    imp = r.get("litellm_import")
    if imp:
        out += [
            f"`python -c 'import litellm'` ({imp['version']}): {imp['import_ms']:.0f} ms "
            "(best of runs; compare with the import time of routing above).",
            "",
        ]
    out += [chart, ""]
    return out


def chart(r: dict[str, Any], path: Path) -> str:
    """Draw median latency against concurrency; return the report's line about it."""
    if importlib.util.find_spec("matplotlib") is None:
        return "No chart: matplotlib is not installed."
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    levels = sorted(r["levels"])
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    style = {
        "direct": ("direct aiohttp", "o-"),
        "routing": ("routing router.chat", "s-"),
        "litellm": ("LiteLLM Router", "^-"),
    }
    for name, (label, marker) in style.items():
        if name in r["levels"][levels[0]]:
            ys = [r["levels"][c][name]["median_ms"] for c in levels]
            ax.plot(levels, ys, marker, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.set_xlabel("concurrency (in-flight requests)")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylabel("median latency (ms, log scale)")
    ax.set_title(f"Chat completion vs fake llama.cpp ({os.cpu_count()} cores)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return f"![median latency against concurrency]({path.name})"


def report(run: Run, out: Path, total_s: float) -> str:
    """The Markdown report of ``run``; draws the chart into ``out`` when it can."""
    lines = [
        "# routing benchmark report",
        "",
        f"Machine: {_versions()}.",
        "",
        f"Run: {'quick (--quick, small counts)' if run.quick else 'full'}; "
        f"{total_s:.0f} s in all ("
        + ", ".join(f"{k} {v:.1f} s" for k, v in run.elapsed.items())
        + ").",
        "",
        "Loopback only; clients, routing and the fakes share the machine's cores, so "
        "figures are noisy (other work on the machine, e.g. concurrent development, "
        "moves them). Targets are those of the issues; *miss* marks a figure outside its "
        "target on this run.",
        "",
    ]
    if run.interrupted:
        lines += ["**Interrupted (Ctrl-C): the report is partial.**", ""]
    r = run.results
    if "resolve" in r:
        lines += _resolve_md(r["resolve"])
    if "library" in r:
        lines += _library_md(r["library"])
    if "gateway" in r:
        lines += _gateway_md(r["gateway"])
    if "soak" in r:
        lines += _soak_md(r["soak"])
    if "faults" in r:
        lines += soak_faults.markdown(r["faults"])
    if "compare" in r:
        png = out / "latency_vs_concurrency.png"
        try:
            note = chart(r["compare"], png)
        except Exception as exc:
            note = f"No chart: {type(exc).__name__}: {exc}"
        lines += _compare_md(r["compare"], note)
    for name, err in run.errors.items():
        lines += [f"## {name}: failed", "", "```", err.strip(), "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------- the CLI


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """``--out``, ``--quick``, ``--only``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=HERE / "out", help="report directory")
    p.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    p.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, print progress, write the report; 1 if a section failed."""
    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if "compare" in args.sections and not litellm_available():
        print("litellm is not installed: the comparison runs without it", flush=True)
    run = Run(quick=args.quick)
    started = time.perf_counter()
    try:
        for name in args.sections:
            print(f"[{time.perf_counter() - started:6.1f} s] {name} ...", flush=True)
            t0 = time.perf_counter()
            try:
                run.results[name] = RUNNERS[name](sizes)
            except Exception:
                run.errors[name] = traceback.format_exc()
                print(f"  {name} FAILED:\n{run.errors[name]}", flush=True)
            run.elapsed[name] = time.perf_counter() - t0
            print(
                f"[{time.perf_counter() - started:6.1f} s] {name} done in "
                f"{run.elapsed[name]:.1f} s",
                flush=True,
            )
    except KeyboardInterrupt:
        run.interrupted = True
        print("interrupted: writing a partial report", flush=True)
    finally:
        args.out.mkdir(parents=True, exist_ok=True)
        text = report(run, args.out, time.perf_counter() - started)
        (args.out / "report.md").write_text(text, encoding="utf-8")
        print(
            f"wrote {args.out / 'report.md'} in {time.perf_counter() - started:.1f} s", flush=True
        )
    if run.interrupted:
        return 130
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
