"""The access log of ``routing serve``: one line per request on logger ``routing.access``.

Lines go through :mod:`logging` (any handler, level or filter a program sets applies).  When
``routing serve`` set logging up itself (nothing configured before it: the CLI), nothing but
its own stderr handler can see them, so :class:`AccessWriter` formats them exactly as that
handler would and writes the lines of one event-loop turn together (in whole lines of at most
:data:`ATOMIC` bytes a write): no log record, no handler chain, one write instead of one per
request (nginx's ``access_log ... buffer``, with a flush every loop turn instead of a timer).
A level set on ``routing.access`` still applies.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ATOMIC", "FORMAT", "AccessWriter", "LogFormatter", "quote"]

#: Bytes written at once at most: PIPE_BUF on Linux, what a pipe writes without interleaving.
ATOMIC = 4096

#: The line format of ``routing serve``'s own logging setup.
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_SPECIAL = re.compile(r'[ "=\\]')


def quote(value: object) -> str:
    """``value`` as one logfmt token: as is when safe, else quoted with escapes."""
    text = str(value)
    if text and text.isprintable() and _SPECIAL.search(text) is None:
        return text
    return '"' + text.encode("unicode_escape").decode().replace('"', '\\"') + '"'


class LogFormatter(logging.Formatter):
    """:data:`FORMAT`, its ``asctime`` text made once per second, not once per line."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return f"{self._seconds(record.created)},{int(record.msecs):03d}"

    def asctime(self, created: float) -> str:
        """``created`` (seconds since the epoch) as ``%(asctime)s`` shows it."""
        return f"{self._seconds(created)},{int((created - int(created)) * 1000):03d}"

    def _seconds(self, created: float) -> str:
        """The text of ``created``'s second (made once per second)."""
        second = int(created)
        if second != self._second[0]:
            stamp = time.strftime(self.default_time_format, self.converter(created))
            self._second = (second, stamp)
        return self._second[1]


class AccessWriter:
    """Writes ``routing.access`` lines straight to ``stream`` (see the module doc)."""

    def __init__(
        self, stream: TextIO, formatter: LogFormatter, clock: Callable[[], float] = time.time
    ) -> None:
        self._stream = stream
        self._formatter = formatter
        self._clock = clock  # wall-clock seconds, as a log record's ``created``
        self._lines: list[str] = []

    @staticmethod
    def applies(handler: logging.Handler) -> bool:
        """True while ``handler`` (``serve``'s own) is all that sees ``routing.access``."""
        access = logging.getLogger("routing.access")
        chain = [access, logging.getLogger("routing"), logging.getLogger()]
        if any(log.filters or log.disabled for log in chain):
            return False
        if access.handlers or chain[1].handlers or not (access.propagate and chain[1].propagate):
            return False
        return chain[2].handlers == [handler] and not handler.filters

    def write(self, message: str) -> None:
        """Queue one line (``message`` is the record's message); written this loop turn."""
        if not self._lines:
            asyncio.get_running_loop().call_soon(self.flush)
        asctime = self._formatter.asctime(self._clock())
        self._lines.append(f"{asctime} INFO routing.access {message}\n")

    def flush(self) -> None:
        """Write every queued line now, whole lines of at most :data:`ATOMIC` bytes a write.

        Workers of ``routing serve --workers N`` share one stderr, often a pipe: a write of
        up to ``PIPE_BUF`` bytes is never interleaved with another process's, so no line is
        ever cut by a sibling's.
        """
        lines, self._lines = self._lines, []
        batch: list[str] = []
        size = 0
        try:
            for line in lines:
                n = len(line) if line.isascii() else len(line.encode())
                if batch and size + n > ATOMIC:
                    self._write("".join(batch))
                    batch, size = [], 0
                batch.append(line)
                size += n
            if batch:
                self._write("".join(batch))
        except (OSError, ValueError):  # stderr gone: like logging, never fail a request
            pass

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()
