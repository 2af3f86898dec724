"""Soak of ``routing serve`` under faults: every request answered, none hung, RSS and fds flat.

Run: ``python benchmarks/soak_faults.py [--requests 5000] [--seconds 60] [--concurrency 16]``.

Starts fakes on 127.0.0.1 (five in this process: three llama.cpp serving ``soak.gguf`` and two
Ollama serving ``soak:latest``; a fourth llama.cpp as a child process, so it can be SIGKILLed)
and ``routing serve`` as a child process with short timeouts (request 2 s, probe 0.5 s, ttl
1 s). After a warm-up it sends the requests spread evenly over the seconds at a bounded
concurrency — OpenAI door and Ollama door ``/api/chat``, streamed and not, a few poisoned —
while chaos runs (:mod:`_soak_chaos`): every 0.5 s one more in-process fake gets the next fault
of ``FAULTS`` (at most two faulted at once), the child fake is killed and restarted on its port
every 3 s, and the config file is replaced every second by one of two valid variants or, every
fourth time, by an invalid one (then SIGHUP) that must be refused while the old one serves.

Any HTTP status is an answer (502, 503, 504, 429 are legitimate under faults). *Lost*: no HTTP
answer (refused, reset). *Hung*: the client timeout (request_timeout + probe timeout + 2.5 s,
so only a gateway that hangs reaches it). *Broken*: an answer cut short, e.g. a stream that
ends without ``[DONE]`` (Ollama: ``done``) and without an in-band error event. *Bad*: a 200
that is not a chat reply or has no ``X-Routed-To``. The gateway's RSS and open file
descriptors (``/proc/PID``) are read after the warm-up, half-way, and after a cool-down with
every fault cleared; flat means at most +20 % RSS and +10 fds. Exit 1 when anything is lost,
hung, broken or bad, the gateway logged a traceback or exited non-zero, an invalid config was
not refused, or RSS/fds grew past the bounds. Loopback only; every loop is bounded in count
and time; everything started is stopped, on errors and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import aiohttp
from _soak_chaos import (
    CLIENT_TIMEOUT,
    FAULTS,
    MODELS,
    Chaos,
    GatewayProcess,
    Usage,
    kill_leftovers,
    start_fakes,
)

REQUESTS = 5000
SECONDS = 60.0
CONCURRENCY = 16
WARMUP = 100  # requests before the first RSS/fd sample, and again (faults cleared) before the last
RSS_GROWTH = 0.20  # end RSS at most 20 % above the post-warm-up sample
FD_GROWTH = 10  # end fd count at most 10 above it
OLLAMA_SHARE, STREAM_SHARE, POISON_SHARE = 0.2, 0.5, 0.03


class Door(StrEnum):
    """The gateway's door a request comes through."""

    OPENAI = "openai"  # POST /v1/chat/completions, SSE streams ending in [DONE]
    OLLAMA = "ollama"  # POST /api/chat, NDJSON streams ending in a "done": true line


class End(StrEnum):
    """How a streamed 200 ended."""

    DONE = "done"
    ERROR = "error"  # an in-band error event: the gateway said what went wrong
    BROKEN = "broken"  # neither: the client cannot tell a cut-off stream from a short one


@dataclass(frozen=True, slots=True)
class Ask:
    """One request to send: door, model, streamed or not, poisoned or not."""

    door: Door
    model: str
    stream: bool
    poison: bool

    def path_and_body(self) -> tuple[str, dict[str, Any]]:
        """The gateway path and JSON body of this request."""
        text = "POISON: fail this one" if self.poison else "hi"
        body = {
            "model": self.model,
            "stream": self.stream,
            "messages": [{"role": "user", "content": text}],
        }
        return ("/v1/chat/completions" if self.door is Door.OPENAI else "/api/chat"), body


def asks(count: int, seed: int) -> list[Ask]:
    """``count`` requests in a reproducible mix."""
    rnd = random.Random(seed)
    return [
        Ask(
            Door.OLLAMA if rnd.random() < OLLAMA_SHARE else Door.OPENAI,
            rnd.choice(MODELS),
            rnd.random() < STREAM_SHARE,
            rnd.random() < POISON_SHARE,
        )
        for _ in range(count)
    ]


@dataclass
class Tally:
    """What happened to every request sent (warm-up and cool-down included)."""

    sent: int = 0
    status: Counter[int] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)  # "openai stream 200", ...
    routed_to: Counter[str] = field(default_factory=Counter)
    in_band_errors: int = 0
    lost: Counter[str] = field(default_factory=Counter)  # exception name -> count
    hung: int = 0
    broken: Counter[str] = field(default_factory=Counter)
    bad: Counter[str] = field(default_factory=Counter)
    not_sent: int = 0
    ok_while_invalid: int = 0  # 200s answered while an invalid config was on disk
    examples: dict[str, str] = field(default_factory=dict)  # first body per kind and status


def _stream_end(door: Door, raw: bytes) -> End:
    """How the streamed 200 body ``raw`` ended."""
    if door is Door.OPENAI:
        events = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]
        if events and events[-1] == b"[DONE]":
            return End.DONE
    else:
        events = [line for line in raw.split(b"\n") if line.strip()]
    try:
        last = json.loads(events[-1]) if events else None
    except ValueError:
        return End.BROKEN
    if isinstance(last, dict) and "error" in last:
        return End.ERROR
    if door is Door.OLLAMA and isinstance(last, dict) and last.get("done") is True:
        return End.DONE
    return End.BROKEN


def _is_reply(door: Door, raw: bytes) -> bool:
    """A non-streamed 200 body is a chat reply of the door's shape."""
    try:
        body = json.loads(raw)
    except ValueError:
        return False
    if door is Door.OPENAI:
        return isinstance(body, dict) and isinstance(body.get("choices"), list)
    return isinstance(body, dict) and isinstance(body.get("message"), dict)


def _never() -> bool:
    return False


async def send(
    session: aiohttp.ClientSession,
    base: str,
    ask: Ask,
    tally: Tally,
    invalid_on_disk: Callable[[], bool] = _never,
) -> None:
    """Send one request and record its outcome in ``tally``."""
    path, body = ask.path_and_body()
    tally.sent += 1
    kind = f"{ask.door} {'stream' if ask.stream else 'plain'}"
    status: int | None = None
    try:
        async with session.post(base + path, json=body) as resp:
            status = resp.status
            raw = await resp.read()
            routed = resp.headers.get("X-Routed-To")
    except TimeoutError:
        tally.hung += 1
        return
    except aiohttp.ClientError as exc:
        if status is None:
            tally.lost[type(exc).__name__] += 1
        else:
            tally.broken[f"{kind}: {type(exc).__name__} after status {status}"] += 1
        return
    tally.status[status] += 1
    tally.kinds[f"{kind} {status}"] += 1
    if status != 200:
        tally.examples.setdefault(f"{kind} {status}", raw[:200].decode("utf-8", "replace"))
        return
    tally.ok_while_invalid += invalid_on_disk()
    if routed is None:
        tally.bad[f"{kind}: 200 without X-Routed-To"] += 1
    else:
        tally.routed_to[routed] += 1
    if ask.stream:
        end = _stream_end(ask.door, raw)
        if end is End.ERROR:
            tally.in_band_errors += 1
        elif end is End.BROKEN:
            tally.broken[f"{kind}: ended without an end or error event"] += 1
    elif not _is_reply(ask.door, raw):
        tally.bad[f"{kind}: 200 body is not a chat reply"] += 1


async def paced(
    session: aiohttp.ClientSession,
    base: str,
    todo: list[Ask],
    tally: Tally,
    concurrency: int,
    seconds: float,
    half_way: asyncio.Event,
    invalid_on_disk: Callable[[], bool] = _never,
) -> None:
    """Send ``todo`` spread evenly over ``seconds`` (as fast as ``concurrency`` allows when
    slower); stop taking new ones at 1.5 × ``seconds`` + 10 s (the rest is ``not_sent``)."""
    started = time.monotonic()
    interval = seconds / max(len(todo), 1)
    cutoff = started + seconds * 1.5 + 10
    cursor = 0

    async def worker() -> None:
        nonlocal cursor
        while cursor < len(todo):
            index, cursor = cursor, cursor + 1
            now = time.monotonic()
            if now > cutoff:
                tally.not_sent += 1
                continue
            if (delay := started + index * interval - now) > 0:
                await asyncio.sleep(delay)
            if index == len(todo) // 2:
                half_way.set()
            await send(session, base, todo[index], tally, invalid_on_disk)

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        half_way.set()


async def measure(
    requests: int = REQUESTS,
    seconds: float = SECONDS,
    concurrency: int = CONCURRENCY,
    seed: int = 16,
) -> dict[str, Any]:
    """Run the soak; return its counts, the gateway's usage samples and the verdict."""
    tally = Tally()
    usage: dict[str, Usage] = {}
    fakes, child = await start_fakes()
    gateway = GatewayProcess(fakes, child)
    chaos = Chaos(fakes, child, gateway, budget=seconds * 1.5 + 10 + CLIENT_TIMEOUT)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
    chaos_s = 0.0
    try:
        await gateway.start()
        async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=concurrency)
        ) as session:
            warm = asks(WARMUP, seed + 1)
            await paced(session, gateway.url, warm, tally, concurrency, 0.0, asyncio.Event())
            usage["start"] = gateway.usage()
            half_way = asyncio.Event()
            started = time.monotonic()
            chaos.start()
            traffic = asyncio.create_task(
                paced(
                    session,
                    gateway.url,
                    asks(requests, seed),
                    tally,
                    concurrency,
                    seconds,
                    half_way,
                    lambda: chaos.invalid_on_disk,
                )
            )
            try:
                await half_way.wait()
                usage["middle"] = gateway.usage()
                await traffic
            except BaseException:  # Ctrl-C: the traffic stops before its session closes
                traffic.cancel()
                await asyncio.gather(traffic, return_exceptions=True)
                raise
            chaos_s = time.monotonic() - started
            reloads = await gateway.generation(session)
            await chaos.stop()  # faults cleared, child fake up, a valid config in place
            # The cool-down runs on one fresh router, as the warm-up did: the samples after
            # each compare like with like.
            await gateway.settled(session)
            await paced(
                session,
                gateway.url,
                asks(WARMUP, seed + 2),
                tally,
                concurrency,
                0.0,
                asyncio.Event(),
            )
            usage["end"] = gateway.usage()
            usage["peak"] = gateway.peak()
    finally:
        await chaos.stop()
        exit_code = await gateway.stop()
        fake_errors = await chaos.close_fakes()
    log = gateway.summary
    result: dict[str, Any] = {
        "requests": requests,
        "seconds": seconds,
        "concurrency": concurrency,
        "warmup": WARMUP,
        "chaos_s": chaos_s,
        "client_timeout": CLIENT_TIMEOUT,
        "sent": tally.sent,
        "not_sent": tally.not_sent,
        "status": dict(tally.status),
        "kinds": dict(tally.kinds),
        "routed_to": dict(tally.routed_to),
        "in_band_errors": tally.in_band_errors,
        "lost": sum(tally.lost.values()),
        "lost_by": dict(tally.lost),
        "hung": tally.hung,
        "broken": sum(tally.broken.values()),
        "broken_by": dict(tally.broken),
        "bad": sum(tally.bad.values()),
        "bad_by": dict(tally.bad),
        "chaos": dict(chaos.counts),
        "applied_reloads": reloads,
        "refused_reloads": log.refused,
        "ok_while_invalid": tally.ok_while_invalid,
        "tracebacks": log.tracebacks,
        "traceback_excerpts": log.excerpts,
        "log_levels": dict(log.levels),
        "gateway_exit": exit_code,
        "fake_errors": fake_errors,
        "chaos_errors": chaos.errors,
        "examples": tally.examples,
        "usage": {k: {"rss_kb": u.rss_kb, "fds": u.fds} for k, u in usage.items()},
    }
    result["failures"] = failures(result)
    return result


def failures(r: dict[str, Any]) -> list[str]:
    """Every reason the run failed (empty: it passed)."""
    out = [f"{r[k]} {k}" for k in ("lost", "hung", "broken", "bad", "tracebacks") if r[k]]
    if r["gateway_exit"] != 0:
        out.append(f"gateway exit code {r['gateway_exit']}")
    out += [f"chaos loop crashed: {error}" for error in r["chaos_errors"]]
    invalid = r["chaos"].get("invalid configs written", 0)
    if r["refused_reloads"] < invalid:
        out.append(f"{invalid} invalid configs written, only {r['refused_reloads']} refused")
    if invalid and not r["ok_while_invalid"]:
        out.append("no request answered 200 while an invalid config was on disk")
    if r["chaos"].get("valid configs written", 0) > 1 and r["applied_reloads"] < 1:
        out.append("no config reload applied")
    start, end = r["usage"]["start"], r["usage"]["end"]
    if end["rss_kb"] > start["rss_kb"] * (1 + RSS_GROWTH):
        out.append(f"RSS grew {start['rss_kb']} -> {end['rss_kb']} kB (> +{RSS_GROWTH:.0%})")
    if end["fds"] > start["fds"] + FD_GROWTH:
        out.append(f"open fds grew {start['fds']} -> {end['fds']} (> +{FD_GROWTH})")
    return out


def markdown(r: dict[str, Any]) -> list[str]:
    """The run as a Markdown section: parameters, then one table of measures."""
    u = r["usage"]
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(r["status"].items()))
    chaos = ", ".join(f"{k}: {n}" for k, n in sorted(r["chaos"].items()))
    out = [
        f"## Gateway soak under faults ({r['requests']} requests over {r['seconds']:g} s at "
        f"concurrency {r['concurrency']}, plus {r['warmup']} warm-up and {r['warmup']} "
        f"cool-down; chaos phase {r['chaos_s']:.1f} s)",
        "",
        f"Faults cycled: {', '.join(FAULTS)}; one fake killed and restarted on its port; "
        f"config replaced every second, SIGHUP sometimes. Client timeout "
        f"{r['client_timeout']:g} s.",
        "",
        "| Measure | Value | Target | Result |",
        "|---|---:|---|---|",
    ]

    def row(name: str, value: object, target: str = "—", ok: bool | None = None) -> None:
        verdict = "—" if ok is None else ("pass" if ok else "**miss**")
        out.append(f"| {name} | {value} | {target} | {verdict} |")

    row("requests sent / not sent (time budget)", f"{r['sent']} / {r['not_sent']}")
    row("answered, by status", statuses)
    row("streams ended by an in-band error event", r["in_band_errors"])
    row("lost (no HTTP answer)", r["lost"], "= 0", r["lost"] == 0)
    row("hung (client timeout)", r["hung"], "= 0", r["hung"] == 0)
    row("broken (cut short, no end or error event)", r["broken"], "= 0", r["broken"] == 0)
    row("bad 200 (not a reply, no X-Routed-To)", r["bad"], "= 0", r["bad"] == 0)
    row("tracebacks in the gateway's stderr", r["tracebacks"], "= 0", r["tracebacks"] == 0)
    invalid = r["chaos"].get("invalid configs written", 0)
    row(
        "config reloads applied / refused (chaos phase)",
        f"{r['applied_reloads']} / {r['refused_reloads']}",
        f"refused ≥ {invalid} invalid written",
        r["refused_reloads"] >= invalid,
    )
    row(
        "200s while an invalid config was on disk",
        r["ok_while_invalid"],
        "> 0 (the old config serves)" if invalid else "—",
        bool(r["ok_while_invalid"]) if invalid else None,
    )
    row("chaos", chaos)
    for name in ("start", "middle", "end", "peak"):
        row(f"gateway RSS / fds, {name}", f"{u[name]['rss_kb'] / 1024:.1f} MB / {u[name]['fds']}")
    s, e = u["start"], u["end"]
    row(
        "RSS growth start → end",
        f"{(e['rss_kb'] / s['rss_kb'] - 1):+.1%}",
        f"≤ +{RSS_GROWTH:.0%}",
        e["rss_kb"] <= s["rss_kb"] * (1 + RSS_GROWTH),
    )
    row(
        "fd growth start → end",
        f"{e['fds'] - s['fds']:+d}",
        f"≤ +{FD_GROWTH}",
        e["fds"] <= s["fds"] + FD_GROWTH,
    )
    row("gateway exit code", r["gateway_exit"], "= 0", r["gateway_exit"] == 0)
    out.append("")
    if r["failures"]:
        out += ["**Failed:** " + "; ".join(r["failures"]) + ".", ""]
    return out


def print_details(r: dict[str, Any]) -> None:
    """The breakdowns behind the table."""
    print(
        "answers by door, kind and status: "
        + ", ".join(f"{k}: {n}" for k, n in sorted(r["kinds"].items()))
    )
    print("200s by instance: " + ", ".join(f"{k}: {n}" for k, n in sorted(r["routed_to"].items())))
    for name in ("lost_by", "broken_by", "bad_by"):
        for what, n in sorted(r[name].items()):
            print(f"  {name[:-3]}: {n} × {what}")
    print(
        "gateway log lines by level and logger: "
        + ", ".join(f"{k}: {n}" for k, n in sorted(r["log_levels"].items()))
    )
    for what, body in sorted(r["examples"].items()):
        print(f"  first {what} body: {body}")
    for excerpt in r["traceback_excerpts"]:
        print("gateway traceback:\n" + excerpt)
    if r["fake_errors"]:
        print(f"fake handler errors (a fake's bug, not the gateway's): {r['fake_errors']}")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run, print; 1 when the run failed, 130 on Ctrl-C."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=REQUESTS, help="requests under chaos")
    p.add_argument("--seconds", type=float, default=SECONDS, help="spread them over this")
    p.add_argument("--concurrency", type=int, default=CONCURRENCY)
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.requests < 1 or args.seconds <= 0 or args.concurrency < 1:
        p.error("--requests, --seconds and --concurrency must be positive")
    try:
        r = asyncio.run(measure(args.requests, args.seconds, args.concurrency))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    finally:
        kill_leftovers()
    print("\n".join(markdown(r)))
    print_details(r)
    if args.json is not None:
        args.json.write_text(json.dumps(r, indent=2), encoding="utf-8")
    for failure in r["failures"]:
        print(f"FAIL: {failure}")
    print("soak under faults: " + ("FAILED" if r["failures"] else "ok"))
    return 1 if r["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
