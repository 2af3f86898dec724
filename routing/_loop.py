"""Which event loop ``routing serve`` runs on: uvloop when it is installed, else asyncio's.

uvloop (the ``speed`` extra: ``pip install 'routing[speed]'``) implements the event loop
and its sockets in C (libuv): measured in ``benchmarks/REPORT.md``, it takes a tenth of the
gateway's CPU per request and more off aiohttp's.  Everything is correct without it; the
default ``auto`` uses it only when it imports.  ``routing serve --loop asyncio`` forces the
standard loop, ``--loop uvloop`` requires uvloop (an error names the extra when it is absent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from routing.errors import RoutingError

__all__ = ["LOOPS", "LoopUnavailable", "loop_factory", "loop_name", "run"]

T = TypeVar("T")

#: The choices of ``--loop``.
LOOPS = ("auto", "asyncio", "uvloop")


class LoopUnavailable(RoutingError):
    """``--loop uvloop`` was asked for and uvloop does not import."""


def loop_factory(choice: str = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop factory for ``choice`` (None: asyncio's default loop)."""
    if choice not in LOOPS:
        raise ValueError(f"loop must be one of {', '.join(LOOPS)}, not {choice!r}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError as exc:
        if choice == "uvloop":
            raise LoopUnavailable(
                f"--loop uvloop: uvloop is not installed ({exc}); "
                "install the speed extra: pip install 'routing[speed]'"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(choice: str = "auto") -> str:
    """The loop ``choice`` runs on: ``uvloop`` or ``asyncio``."""
    return "asyncio" if loop_factory(choice) is None else "uvloop"


def run(main: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """``asyncio.run(main)`` on the loop ``choice`` names (see the module doc)."""
    try:
        factory = loop_factory(choice)
    except BaseException:
        main.close()  # never awaited: say so quietly, not with a RuntimeWarning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
