"""Command line: ``python -m fake_servers KIND ...`` or ``python -m fake_servers fleet FILE``.

Prints ``listening on http://HOST:PORT`` (a fleet: ``NAME listening on ...`` per server, then
``fleet ready``), serves until SIGINT or SIGTERM, then exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from fake_servers._core import KINDS, parse_fault
from fake_servers._server import FakeServer
from fake_servers.fleet import Fleet


def _fault(text: str) -> str:
    try:
        parse_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}")
    return int(text)


def _server_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fake_servers",
        description="Serve a fake LLM backend (or `fleet FILE.yaml` for many).",
    )
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--model", action="append", default=[], help="a model id (repeat; first is loaded)"
    )
    parser.add_argument(
        "--fault",
        type=_fault,
        default="none",
        help="e.g. hang, slow:200, error429:3, echo-auth:stream-error, redirect:URL",
    )
    parser.add_argument("--loading-seconds", type=float, default=0.0)
    parser.add_argument("--api-key", default=None, help="require exactly this key")
    parser.add_argument(
        "--tool-calls",
        type=_count,
        default=0,
        metavar="N",
        help="answer every request offering tools with N tool calls (0: only on CALL_TOOLS)",
    )
    parser.add_argument(
        "--router-mode",
        action="store_true",
        help="llama.cpp router mode: every --model listed with its status, loaded on demand",
    )
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="llama.cpp started with --embeddings: /v1/embeddings served (else a 501)",
    )
    parser.add_argument(
        "--loaded",
        action="append",
        default=None,
        metavar="MODEL",
        help="a loaded model (repeat; router mode: default none; Ollama /api/ps: the first)",
    )
    return parser


def _fleet_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fake_servers fleet", description="Serve the fakes listed in a YAML file."
    )
    parser.add_argument("file")
    return parser


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT/SIGTERM; installed before anything is printed, so a caller
    that signals as soon as it reads the first line never kills us half-way."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _serve(args: argparse.Namespace) -> None:
    stop = _stop_on_signals()
    server = FakeServer(
        args.kind,
        args.model or None,
        host=args.host,
        port=args.port,
        fault=args.fault,
        loading_seconds=args.loading_seconds,
        api_key=args.api_key,
        tool_calls=args.tool_calls,
        router_mode=args.router_mode,
        loaded=args.loaded,
        embeddings=args.embeddings,
    )
    async with server:
        print(f"listening on {server.url}", flush=True)
        await stop.wait()


async def _serve_fleet(fleet: Fleet) -> None:
    stop = _stop_on_signals()
    async with fleet:
        for name, url in fleet.urls.items():
            print(f"{name} listening on {url}", flush=True)
        print("fleet ready", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "fleet":
        fleet_args = _fleet_parser().parse_args(args_list[1:])
        try:
            fleet = Fleet.from_file(fleet_args.file)
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        asyncio.run(_serve_fleet(fleet))
        return 0
    try:
        asyncio.run(_serve(_server_parser().parse_args(args_list)))
    except ValueError as exc:  # a knob the kind cannot take (e.g. --router-mode on ollama)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
