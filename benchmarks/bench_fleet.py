"""Fleet benchmark on real llama.cpp (extra ``real``): strategies against multi-turn chats.

Two real ``llama-server`` processes serve one model (gemma3 270M, ``-t 1 --parallel 1``
each, restarted for every mode so no mode inherits another's prompt cache). Several
conversations, each with its own ~1,000-token context, run concurrently, turn after turn,
through an in-process gateway (``routing._gateway_server.Gateway`` on 127.0.0.1, port 0) with each
strategy (``first``, ``round-robin``, ``least-busy``, ``sticky``: the session key is the
hash of the system prompt and first user message) and an ideal pinning (conversation *i*
sent to server *i mod 2* by ``X-Routing-Provider``). For each: throughput, median latency
per turn, and the share of prompt tokens llama.cpp served from its cache
(``timings.cache_n / (cache_n + prompt_n)`` of its replies). Ratios come from one run.

Also measures warm resolve cost with every strategy at 1,000 instances (the
bench_resolve.py setup: 200 rules, 5 candidates per model), target < 50 µs.

Run: ``python benchmarks/bench_fleet.py`` (about 4 minutes on 2 cores; ``--resolve-only``
skips the real servers; ``--json FILE`` saves the figures). Loopback only, bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import aiohttp  # noqa: E402
import bench_resolve  # noqa: E402

from routing._decision import State  # noqa: E402
from routing._engine import Router  # noqa: E402
from routing._gateway_server import Gateway  # noqa: E402
from routing._health import ProbeResult  # noqa: E402
from routing._strategies import session_key, sticky_weight  # noqa: E402
from routing.config import parse_config  # noqa: E402
from routing.conformance.real_llamacpp import RealLlamaCpp, missing_reason  # noqa: E402

ALIAS = "gemma3-270m"
MODES = ("first", "round-robin", "least-busy", "sticky", "pinned")
SERVERS = ("llamacpp:s0", "llamacpp:s1")
STRATEGIES = ("first", "round-robin", "least-busy", "sticky")

_TOPICS = (
    "parser",
    "scheduler",
    "cache",
    "router",
    "logger",
    "decoder",
    "indexer",
    "queue",
    "planner",
    "encoder",
    "monitor",
    "resolver",
)
_VERBS = ("reads", "writes", "validates", "merges", "splits", "retries", "hashes", "sorts")
_THINGS = ("records", "tokens", "requests", "batches", "fields", "rows", "frames", "keys")


class FleetServer(RealLlamaCpp):
    """A real llama-server with one thread and one slot (``-t 1 --parallel 1``)."""

    def command(self) -> list[str]:
        """The base command plus ``-t 1 --parallel 1``."""
        return [*super().command(), "-t", "1", "--parallel", "1"]


def context(conv: int, words: int) -> str:
    """A conversation's own context: ``words`` words of code-review notes, unique from the
    first token on (so no two conversations share a cached prefix)."""
    rng = random.Random(conv)
    out = [f"Conversation {conv}. You review project {rng.choice(_TOPICS)}-{conv}. Notes:"]
    count, n = 7, 0
    while count < words:  # bounded: each note adds 7 words
        n += 1
        out.append(
            f"Note {n}: the {rng.choice(_TOPICS)} {rng.choice(_VERBS)} "
            f"{rng.randrange(1000)} {rng.choice(_THINGS)}."
        )
        count += 7
    return " ".join(out)


def question(conv: int, turn: int) -> str:
    """The user's message of a turn."""
    return f"Turn {turn}: in one short sentence, what does note {turn * 3 + conv} say?"


@dataclass
class Turn:
    """One request: who answered, how long it took, what llama.cpp had cached."""

    conv: int
    turn: int
    latency: float
    routed: str
    cache_n: int
    prompt_n: int


@dataclass
class ModeResult:
    """The figures of one mode."""

    mode: str
    wall: float
    turns: list[Turn] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return len(self.turns) / self.wall

    @property
    def median(self) -> float:
        return statistics.median(t.latency for t in self.turns)

    @property
    def cache_share(self) -> float:
        cached = sum(t.cache_n for t in self.turns)
        return cached / max(1, cached + sum(t.prompt_n for t in self.turns))

    @property
    def per_server(self) -> dict[str, int]:
        return dict(sorted(Counter(t.routed for t in self.turns).items()))

    @property
    def hops(self) -> int:
        """Turns sent to another server than the conversation's previous turn."""
        last: dict[int, str] = {}
        hops = 0
        for t in sorted(self.turns, key=lambda t: (t.conv, t.turn)):
            hops += t.conv in last and last[t.conv] != t.routed
            last[t.conv] = t.routed
        return hops


def _config(urls: list[str], strategy: str) -> str:
    lines = [
        "version: 1",
        "defaults:",
        "  connect_timeout: 1",
        "  request_timeout: 300",
        "  probe: {timeout: 2.0, ttl: 1}",
        f"  strategy: {strategy}",
        "providers:",
        "  llamacpp:",
        "    api: openai",
        "    kind: llamacpp",
        "    instances:",
    ]
    lines += [f'      s{i}: {{url: "{url}"}}' for i, url in enumerate(urls)]
    return "\n".join(lines) + "\n"


async def _converse(
    http: aiohttp.ClientSession,
    url: str,
    conv: int,
    args: argparse.Namespace,
    pin: str | None,
    out: list[Turn],
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": context(conv, args.words)},
        {"role": "user", "content": question(conv, 0)},
    ]
    headers = {"X-Routing-Provider": pin} if pin else {}
    for turn in range(args.turns):
        body = {
            "model": ALIAS,
            "messages": messages,
            "max_tokens": args.max_tokens,
            "temperature": 0,
        }
        t0 = time.perf_counter()
        async with http.post(url, json=body, headers=headers) as resp:
            reply = await resp.json()
            routed = resp.headers.get("X-Routed-To", "?")
        latency = time.perf_counter() - t0
        if resp.status != 200:
            raise RuntimeError(f"conversation {conv} turn {turn}: HTTP {resp.status}: {reply}")
        timings = reply["timings"]
        out.append(Turn(conv, turn, latency, routed, timings["cache_n"], timings["prompt_n"]))
        answer = reply["choices"][0]["message"].get("content") or ""
        messages += [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": question(conv, turn + 1)},
        ]


async def run_mode(mode: str, args: argparse.Namespace) -> ModeResult:
    """Fresh servers, a gateway with the mode's strategy, every conversation at once."""
    servers = [FleetServer(ALIAS, ctx_size=args.ctx) for _ in SERVERS]
    try:
        await asyncio.gather(*(s.start() for s in servers))
        text = _config([s.url for s in servers], "first" if mode == "pinned" else mode)
        gateway = await Gateway(parse_config(text, environ={})).start("127.0.0.1", 0)
        try:
            timeout = aiohttp.ClientTimeout(total=args.request_timeout)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                url = gateway.url + "/v1/chat/completions"
                turns: list[Turn] = []
                t0 = time.perf_counter()
                await asyncio.gather(
                    *(
                        _converse(
                            http,
                            url,
                            c,
                            args,
                            SERVERS[c % len(SERVERS)] if mode == "pinned" else None,
                            turns,
                        )
                        for c in range(args.conversations)
                    )
                )
                return ModeResult(mode, time.perf_counter() - t0, turns)
        finally:
            await gateway.stop()
    finally:
        for s in servers:
            s.stop()


def sticky_split(args: argparse.Namespace) -> dict[str, int]:
    """Where sticky's content hash puts each conversation (known before any request)."""
    split: Counter[str] = Counter()
    for c in range(args.conversations):
        key = session_key(
            {
                "messages": [
                    {"role": "system", "content": context(c, args.words)},
                    {"role": "user", "content": question(c, 0)},
                ]
            }
        )
        assert key is not None
        split[max(SERVERS, key=lambda k: sticky_weight(key, k))] += 1
    return dict(sorted(split.items()))


# -- resolve cost with strategies ----------------------------------------------------------


async def _warm_resolve(strategy: str, instances: int, calls: int) -> dict[str, float]:
    text = bench_resolve._config_text(instances, bench_resolve.RULES).replace(
        "defaults: {", f"defaults: {{strategy: {strategy}, ", 1
    )
    router = Router(parse_config(text, environ={}))
    now = router.clock()
    providers = instances // bench_resolve.PER_PROVIDER
    for key, health in router._health.items():
        p = int(key.split(":")[0][1:])
        fams = [f"family{r}-coder" for r in range(p, bench_resolve.RULES, providers)]
        health.record(ProbeResult(State.READY, (bench_resolve._model(key), *fams), at=now))
    rng = random.Random(42)
    models = [f"family{rng.randrange(bench_resolve.RULES)}-coder" for _ in range(512)]
    sessions = [f"h:session-{i}" for i in range(97)]
    for m in models:
        await router.resolve(model=m, session=sessions[0])
    samples = []
    gc.disable()
    try:
        for i in range(calls):
            t0 = time.perf_counter_ns()
            await router.resolve(model=models[i % len(models)], session=sessions[i % 97])
            samples.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    await router.aclose()
    samples.sort()
    return {
        "median_us": statistics.median(samples) / 1000,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
    }


def resolve_costs(calls: int, repeats: int) -> dict[str, dict[str, float]]:
    """Warm resolve at 1,000 instances for every strategy: the best of ``repeats`` runs
    (interleaved, so a burst of other work on the machine does not pick one strategy)."""
    best: dict[str, dict[str, float]] = {}
    for _ in range(repeats):
        for s in STRATEGIES:
            r = asyncio.run(_warm_resolve(s, 1000, calls))
            if s not in best or r["median_us"] < best[s]["median_us"]:
                best[s] = r
    return best


# -- report --------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "pass" if ok else "**miss**"


def report(
    results: dict[str, ModeResult],
    resolve: dict[str, dict[str, float]],
    args: argparse.Namespace,
    split: dict[str, int],
    prompt_tokens: int,
) -> str:
    """The Markdown section for REPORT.md."""
    lines = []
    if results:
        lines += [
            f"{args.conversations} conversations x {args.turns} turns, "
            f"~{prompt_tokens} prompt tokens of own context each, max_tokens "
            f"{args.max_tokens}, two llama-server (`-t 1 --parallel 1`, ctx {args.ctx}) "
            "restarted per mode; sticky's content hash split the conversations "
            f"{' / '.join(f'{k} {v}' for k, v in split.items())}.",
            "",
            "| Mode | req/s | median latency | cache share | requests per server "
            "| turns that changed server |",
            "|---|---:|---:|---:|---|---:|",
        ]
        for mode, r in results.items():
            per = ", ".join(f"{k.split(':')[1]} {v}" for k, v in r.per_server.items())
            lines.append(
                f"| {mode} | {r.throughput:.3f} | {r.median:.2f} s | "
                f"{r.cache_share:.0%} | {per} | {r.hops} |"
            )
        lines.append("")
        pin, sticky = results["pinned"], results["sticky"]
        rr, first, lb = results["round-robin"], results["first"], results["least-busy"]
        cache_ratio = sticky.cache_share / max(pin.cache_share, 1e-9)
        lat_ratio = sticky.median / rr.median
        tput_ratio = lb.throughput / first.throughput
        lines += [
            "| Ratio (one run) | Value | Target | Result |",
            "|---|---:|---|---|",
            f"| sticky cache share / ideal pinning's | {cache_ratio:.2f} | ≥ 0.90 | "
            f"{_verdict(cache_ratio >= 0.9)} |",
            f"| sticky median latency / round-robin's | {lat_ratio:.2f} | ≤ 0.50 | "
            f"{_verdict(lat_ratio <= 0.5)} |",
            f"| least-busy throughput / first's | {tput_ratio:.2f} | ≥ 1.25 | "
            f"{_verdict(tput_ratio >= 1.25)} |",
            "",
        ]
        lines += _bars(results)
    if resolve:
        lines += [
            "",
            "Warm resolve with each strategy, 1,000 instances, 200 rules, 5 candidates "
            f"per model, {args.resolve_calls} calls, best median of "
            f"{args.resolve_repeats} interleaved runs:",
            "",
            "| Strategy | median | p99 | Target | Result |",
            "|---|---:|---:|---|---|",
        ]
        for s, r in resolve.items():
            lines.append(
                f"| {s} | {r['median_us']:.1f} µs | {r['p99_us']:.1f} µs | "
                f"< 50 µs | {_verdict(r['median_us'] < 50)} |"
            )
    return "\n".join(lines) + "\n"


def _bars(results: dict[str, ModeResult]) -> list[str]:
    """A text chart (matplotlib is optional): cache share and median latency per mode."""
    worst = max(r.median for r in results.values())
    out = ["```", "mode          cache share (#)             median latency (=)"]
    for mode, r in results.items():
        cache = "#" * round(r.cache_share * 25)
        lat = "=" * max(1, round(r.median / worst * 25))
        out.append(f"{mode:<13} {cache:<25} {r.cache_share:4.0%}  {lat:<25} {r.median:5.2f} s")
    return [*out, "```"]


def _chart(results: dict[str, ModeResult], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    modes = list(results)
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(11, 3.2))
    ax1.bar(modes, [results[m].cache_share * 100 for m in modes])
    ax1.set_title("prompt tokens from cache (%)")
    ax2.bar(modes, [results[m].median for m in modes])
    ax2.set_title("median latency per turn (s)")
    ax3.bar(modes, [results[m].throughput for m in modes])
    ax3.set_title("throughput (req/s)")
    for ax in (ax1, ax2, ax3):
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


async def run_fleet(args: argparse.Namespace) -> dict[str, ModeResult]:
    """Every mode in turn, within ``args.deadline`` seconds."""
    results: dict[str, ModeResult] = {}
    async with asyncio.timeout(args.deadline):
        for mode in args.modes:
            results[mode] = await run_mode(mode, args)
            r = results[mode]
            print(
                f"  {mode:<12} {r.throughput:.3f} req/s  median {r.median:.2f} s  "
                f"cache {r.cache_share:.0%}  {r.per_server}  hops {r.hops}  "
                f"({r.wall:.1f} s)",
                flush=True,
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument(
        "--words",
        type=int,
        default=480,
        help="words of own context per conversation (about 1,000 tokens)",
    )
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--request-timeout", type=float, default=300)
    parser.add_argument("--deadline", type=float, default=900, help="bound of the whole run (s)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--resolve-calls", type=int, default=10_000)
    parser.add_argument("--resolve-repeats", type=int, default=3)
    parser.add_argument("--resolve-only", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--chart", type=Path, default=HERE / "fleet_strategies.png")
    args = parser.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    if unknown := set(args.modes) - set(MODES):
        parser.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    resolve = resolve_costs(args.resolve_calls, args.resolve_repeats)
    for s, r in resolve.items():
        print(
            f"warm resolve, {s:<11} 1000 instances: median {r['median_us']:.1f} us  "
            f"p99 {r['p99_us']:.1f} us",
            flush=True,
        )
    results: dict[str, ModeResult] = {}
    split: dict[str, int] = {}
    prompt_tokens = 0
    if not args.resolve_only:
        if (why := missing_reason()) is not None:
            print(f"fleet benchmark skipped: {why}", file=sys.stderr)
            return 2
        split = sticky_split(args)
        print(f"sticky split by content hash: {split}", flush=True)
        results = asyncio.run(run_fleet(args))
        firsts = [t.prompt_n + t.cache_n for r in results.values() for t in r.turns if t.turn == 0]
        prompt_tokens = round(statistics.mean(firsts)) if firsts else 0
    if set(MODES) <= set(results) or args.resolve_only:
        text = report(results, resolve, args, split, prompt_tokens)
        print(text)
        if results and _chart(results, args.chart):
            print(f"chart written to {args.chart}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "resolve": resolve,
                    "split": split,
                    "modes": {
                        m: {
                            "wall": r.wall,
                            "throughput": r.throughput,
                            "median": r.median,
                            "cache_share": r.cache_share,
                            "per_server": r.per_server,
                            "hops": r.hops,
                            "turns": [asdict(t) for t in r.turns],
                        }
                        for m, r in results.items()
                    },
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
