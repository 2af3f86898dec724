"""The ``routing`` command line: validate | explain | serve | status | demo.

Exit codes: 0 ok, 2 invalid config or usage, 3 no route, 4 backend failure,
130 interrupted.  Users never see a traceback: every expected failure is a
:class:`~routing.errors.RoutingError` mapped here to a message and a code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from routing._auth import is_loopback
from routing._loop import LOOPS, loop_factory, run
from routing.config import load_config
from routing.errors import BackendError, ConfigError, NoRouteError, RoutingError

if TYPE_CHECKING:
    from routing._decision import Decision

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_ROUTE = 3
EXIT_BACKEND = 4
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="routing",
        description="Route chat requests to the llama.cpp / Ollama / LM Studio / OpenAI / "
        "Anthropic instance that really serves the model.",
        epilog="exit codes: 0 ok, 2 invalid config or usage, 3 no route, 4 backend failure",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("validate", help="check config files; print every problem located")
    p.add_argument("configs", nargs="+", metavar="CONFIG")

    p = sub.add_parser("explain", help="probe live backends and show where a request would go")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("--provider", help="provider or provider:instance chosen by the caller")
    p.add_argument("--model", help="requested model")
    p.add_argument(
        "--operation",
        default="chat",
        choices=["chat", "completion", "embedding", "messages"],
        help="what the request asks for (default chat): only instances that can do it are chosen",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("status", help="probe every instance and print its state and models")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("serve", help="run the OpenAI-compatible gateway")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("--host", help="address to bind (default 127.0.0.1, or gateway.host)")
    p.add_argument("--port", type=int, help="port to bind (default 8000, or gateway.port)")
    p.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve an address other than loopback without gateway.auth",
    )
    p.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="worker processes sharing the port (default 1; Linux SO_REUSEPORT)",
    )
    p.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help="event loop: uvloop when installed (auto, the default; extra 'speed'), "
        "asyncio's own, or uvloop (an error without it)",
    )

    sub.add_parser("demo", help="start bundled fakes and a gateway, route sample requests, stop")

    p = sub.add_parser("conformance", help="run the conformance suite (fakes or real servers)")
    p.add_argument("--backends", choices=["fake", "real"], default="fake")
    p.add_argument("--config", help="a file of cases or a directory of them")
    p.add_argument("-k", dest="pattern", help="only cases whose name contains PATTERN")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _echo(text: str) -> None:
    """Print ``text`` whatever it holds: control characters (from a backend's model name, a
    file name) are escaped, and what stdout cannot encode (a lone surrogate, non-ASCII under
    a C locale) becomes a backslash escape instead of a UnicodeEncodeError."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(text.encode(encoding, "backslashreplace").decode(encoding, "replace"))


def _cmd_validate(args: argparse.Namespace) -> int:
    code = EXIT_OK
    for name in args.configs:
        try:
            load_config(name)
        except ConfigError as exc:
            for issue in exc.issues:
                _echo(str(issue))
            code = EXIT_USAGE
        else:
            _echo(f"{name}: ok")
    return code


async def _explain(args: argparse.Namespace) -> Decision:
    from routing._engine import Router  # aiohttp loads only for the commands that talk
    from routing._operations import Operation

    async with Router.from_file(args.config) as router:
        return await router.resolve(
            provider=args.provider, model=args.model, operation=Operation(args.operation)
        )


def _cmd_explain(args: argparse.Namespace) -> int:
    try:
        decision = asyncio.run(_explain(args))
    except NoRouteError as exc:
        if args.json:
            print(
                json.dumps(
                    {
                        "error": str(exc),
                        "model": exc.model,
                        "provider": exc.provider,
                        "candidates": [c.as_dict() for c in exc.candidates],
                    },
                    indent=2,
                )
            )
        else:
            _echo(f"no route: {exc.headline}")
            for c in exc.candidates:
                _echo(f"   {c.instance:<32} {c.state:<9} [{', '.join(c.models) or '-'}] {c.why}")
        return EXIT_NO_ROUTE
    if args.json:
        print(json.dumps(decision.as_dict(), indent=2))
    else:
        _echo(decision.explain())
    return EXIT_OK


async def _status(args: argparse.Namespace) -> list[dict[str, Any]]:
    from routing._engine import Router

    async with Router.from_file(args.config) as router:
        await router.refresh()
        return router.status()


def _cmd_status(args: argparse.Namespace) -> int:
    rows = asyncio.run(_status(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        models = ", ".join(row["models"]) or "-"
        detail = f"  ({row['detail']})" if row["detail"] else ""
        print(f"{row['instance']:<32} {row['state']:<9} {row['url']:<36} [{models}]{detail}")
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from routing._gateway_server import serve

    config = load_config(args.config)  # fail fast, located, before binding anything
    host = args.host if args.host is not None else config.gateway.host
    if config.gateway.auth is None and not args.allow_unauthenticated and not is_loopback(host):
        print(
            f"error: refusing to serve {host} without gateway.auth: anyone who can reach "
            "it could use every backend; add keys under gateway.auth in the config (see "
            "configs/auth.yaml), bind 127.0.0.1, or pass --allow-unauthenticated",
            file=sys.stderr,
        )
        return EXIT_USAGE
    loop_factory(args.loop)  # --loop uvloop without uvloop: the error before anything starts
    if args.workers > 1:
        from routing._workers import supervise

        port = args.port if args.port is not None else config.gateway.port
        return supervise(args.config, host, port, args.workers, loop=args.loop)
    run(serve(args.config, args.host, args.port), args.loop)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from routing._demo import run_demo

    return run_demo()


def _cmd_conformance(args: argparse.Namespace) -> int:
    from routing.conformance.runner import main_conformance

    return main_conformance(args.backends, args.config, args.pattern)


_COMMANDS = {
    "validate": _cmd_validate,
    "explain": _cmd_explain,
    "status": _cmd_status,
    "serve": _cmd_serve,
    "demo": _cmd_demo,
    "conformance": _cmd_conformance,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (the console script exits with it)."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return EXIT_USAGE
    except NoRouteError as exc:
        print(f"no route: {exc}", file=sys.stderr)
        return EXIT_NO_ROUTE
    except BackendError as exc:
        print(f"backend failure: {exc}", file=sys.stderr)
        return EXIT_BACKEND
    except RoutingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
