"""The ``routing`` command line: validate | explain | serve | status | demo.

Exit codes: 0 ok, 2 invalid config or usage, 3 no route, 4 backend failure,
130 interrupted.  Users never see a traceback: every expected failure is a
:class:`~routing.errors.RoutingError` mapped here to a message and a code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from routing.config import load_config
from routing.errors import BackendError, ConfigError, NoRouteError, RoutingError

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
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    code = EXIT_OK
    for name in args.configs:
        try:
            load_config(name)
        except ConfigError as exc:
            for issue in exc.issues:
                print(issue)
            code = EXIT_USAGE
        else:
            print(f"{name}: ok")
    return code


_COMMANDS = {"validate": _cmd_validate}


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
