"""The access log of ``routing serve``: the direct writer is line-for-line what logging writes."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from scale_support import Serve, config_text, request

from routing._access_log import ATOMIC, FORMAT, AccessWriter, LogFormatter, quote


class _Stream(io.StringIO):
    """A text stream that remembers each ``write`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def _logged(created: float, message: str) -> str:
    """What serve's own logging handler writes for an INFO record of routing.access."""
    record = logging.LogRecord("routing.access", logging.INFO, __file__, 1, message, None, None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    return LogFormatter(FORMAT).format(record) + "\n"


async def _next_turn() -> None:
    """Return once every callback scheduled before this call has run."""
    done = asyncio.Event()
    asyncio.get_running_loop().call_soon(done.set)
    await done.wait()


@pytest.mark.parametrize("created", [1_764_160_000.0, 1_764_160_000.999, 1_764_160_001.0005])
def test_asctime_is_the_formatters(created: float) -> None:
    """``asctime`` gives the text logging's own formatTime gives, milliseconds included."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    expected = logging.Formatter.formatTime(logging.Formatter(FORMAT), record)
    assert LogFormatter(FORMAT).asctime(created) == expected


def test_one_write_per_loop_turn_each_line_as_logging_writes_it() -> None:
    """Lines of one loop turn go out in one write, each exactly as the handler would."""
    asyncio.run(_one_write_per_loop_turn())


async def _one_write_per_loop_turn() -> None:
    stream, times = _Stream(), iter([1_764_160_000.25, 1_764_160_000.5, 1_764_160_002.75])
    writer = AccessWriter(stream, LogFormatter(FORMAT), clock=lambda: next(times))
    writer.write("method=GET path=/a status=200")
    writer.write("method=GET path=/b status=404")
    assert stream.calls == []  # nothing before the turn ends
    await _next_turn()
    assert stream.calls == [
        _logged(1_764_160_000.25, "method=GET path=/a status=200")
        + _logged(1_764_160_000.5, "method=GET path=/b status=404")
    ]
    writer.write("method=POST path=/c status=502")
    writer.flush()  # at shutdown: written at once
    assert stream.calls[1] == _logged(1_764_160_002.75, "method=POST path=/c status=502")
    await _next_turn()
    assert len(stream.calls) == 2  # the turn's own flush finds nothing left


def test_a_busy_turn_is_written_in_whole_lines_of_at_most_pipe_buf_bytes() -> None:
    """Many lines in one turn: several writes, each whole lines and at most ATOMIC bytes, so
    workers sharing a pipe never cut each other's lines; nothing lost, order kept."""
    stream = _Stream()
    writer = AccessWriter(stream, LogFormatter(FORMAT), clock=lambda: 1_764_160_000.0)
    messages = [f"method=GET path=/{'é' * (n % 7)}{n} status=200" + " x" * 40 for n in range(200)]
    for message in messages:
        writer._lines.append(f"{message}\n")
    writer.flush()
    assert len(stream.calls) > 1
    assert all(call.endswith("\n") and len(call.encode()) <= ATOMIC for call in stream.calls)
    assert "".join(stream.calls) == "".join(f"{m}\n" for m in messages)


def test_a_closed_stream_never_fails_the_request() -> None:
    """Writing to a closed stream is dropped quietly, as logging does."""
    stream = io.StringIO()
    writer = AccessWriter(stream, LogFormatter(FORMAT))
    stream.close()
    writer._lines.append("x\n")
    writer.flush()
    assert writer._lines == []


@pytest.fixture
def own_logging() -> Iterator[logging.Handler]:
    """Logging set up as ``serve`` does on a bare interpreter; everything restored after."""
    chain = [logging.getLogger(n) for n in ("", "routing", "routing.access")]
    saved = [(log, log.handlers[:], log.filters[:], log.propagate) for log in chain]
    handler = logging.StreamHandler(io.StringIO())
    for log in chain:
        log.handlers, log.filters, log.propagate = [], [], True
    yield handler
    for log, handlers, filters, propagate in saved:
        log.handlers, log.filters, log.propagate = handlers, filters, propagate


def test_applies_only_while_serves_handler_alone_sees_the_lines(
    own_logging: logging.Handler,
) -> None:
    """Any other handler, filter or cut propagation sends lines through logging again."""
    logging.getLogger().handlers = [own_logging]  # pytest adds its own for the test's call
    assert AccessWriter.applies(own_logging)
    access = logging.getLogger("routing.access")
    access.addHandler(logging.NullHandler())
    assert not AccessWriter.applies(own_logging)
    access.handlers = []
    access.addFilter(logging.Filter("nothing"))
    assert not AccessWriter.applies(own_logging)
    access.filters = []
    access.propagate = False
    assert not AccessWriter.applies(own_logging)
    access.propagate = True
    logging.getLogger().addHandler(logging.NullHandler())
    assert not AccessWriter.applies(own_logging)


def test_quote() -> None:
    """Safe values as they are; spaces, quotes, '=' and control characters quoted."""
    assert quote("/v1/models") == "/v1/models"
    assert quote("x y") == '"x y"'
    assert quote('a"b') == '"a\\"b"'
    assert quote("a\nb") == '"a\\nb"'
    assert quote("") == '""'


def test_serve_writes_one_line_per_request(tmp_path: Path) -> None:
    """``routing serve``: every request's line on stderr, in the log format, flushed at stop."""
    config = tmp_path / "routing.yaml"
    config.write_text(config_text({"a": "http://127.0.0.1:9"}), encoding="utf-8")
    serve = Serve(config, "--loop", "asyncio")
    try:
        url = serve.wait_listening()
        statuses = [request(url, path=p).status for p in ("/healthz", "/nowhere", "/healthz")]
    finally:
        assert serve.stop() == 0
    assert statuses == [200, 404, 200]
    lines = re.findall(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO routing\.access (.*)$",
        serve.log.read_text(),
        re.MULTILINE,
    )
    assert [re.sub(r"latency_ms=\S+", "latency_ms=L", line) for line in lines] == [
        f"method=GET path={path} status={status} instance=- model=- latency_ms=L failovers=0 key=-"
        for path, status in (("/healthz", 200), ("/nowhere", 404), ("/healthz", 200))
    ]
