"""Hot reload: new routes from a valid file, the old config kept on an invalid one,
in-flight requests finishing on the router they started on, and SIGHUP under serve().

Whatever replaces the file (nothing, null, a 5,000-digit number, NaN, broken YAML, an
unreadable file, a FIFO) and whatever fails while loading or applying it, the watcher logs one
located line once, keeps serving the old config and keeps watching: the next valid edit (or
SIGHUP) is applied.  Waiting is polling with a deadline on the watcher's counters."""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from gateway_support import GatewayHandle, chat, config_text, wait_until

from routing._reload import ConfigWatcher
from routing.config import Config, parse_config

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]


def test_valid_new_file_gives_new_routes(fake_server: FakeFactory, gateway: GatewayFactory) -> None:
    """Polling picks up a changed file: a model added there is routed at once."""
    a = fake_server("llamacpp", ["a.gguf"])
    b = fake_server("llamacpp", ["b.gguf"])
    gw = gateway(config_text({"llamacpp:a": a}), reload_interval=0.02)
    assert chat(gw.url, "b.gguf").status == 404
    gw.path.write_text(config_text({"llamacpp:a": a, "llamacpp:b": b}), encoding="utf-8")
    wait_until(lambda: gw.gateway.pool.generation == 1, what="the reload")
    reply = chat(gw.url, "b.gguf")
    assert reply.status == 200 and reply.routed_to == "llamacpp:b"


def test_unchanged_file_is_not_reloaded(fake_server: FakeFactory, gateway: GatewayFactory) -> None:
    """Rewriting the same bytes does not rebuild the router (probe caches survive)."""
    a = fake_server("llamacpp", ["a.gguf"])
    gw = gateway(config_text({"llamacpp:a": a}))
    gw.path.write_text(gw.path.read_text(encoding="utf-8"), encoding="utf-8")
    assert gw.reload_check() is False
    assert gw.gateway.pool.generation == 0


def test_invalid_new_file_keeps_old_config(
    fake_server: FakeFactory, gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An invalid new file is refused with located errors; the old config keeps serving."""
    a = fake_server("llamacpp", ["a.gguf"])
    gw = gateway(config_text({"llamacpp:a": a}))
    caplog.set_level(logging.ERROR, logger="routing.reload")
    gw.path.write_text("version: 1\nproviders:\n  llamacpp:\n    api: nonsense\n", encoding="utf-8")
    assert gw.reload_check() is False
    message = "\n".join(r.getMessage() for r in caplog.records if r.name == "routing.reload")
    assert re.search(re.escape(str(gw.path)) + r":\d+:\d+: \$\.providers", message), message
    reply = chat(gw.url, "a.gguf")
    assert reply.status == 200 and reply.routed_to == "llamacpp:a"
    assert gw.gateway.pool.generation == 0


def test_in_flight_request_survives_reload(
    fake_server: FakeFactory, gateway: GatewayFactory
) -> None:
    """A slow request started before a reload finishes on the old router; new ones move."""
    slow = fake_server("llamacpp", ["a.gguf"])
    fresh = fake_server("llamacpp", ["a.gguf"])
    gw = gateway(config_text({"llamacpp:slow": slow}))
    assert chat(gw.url, "a.gguf").status == 200
    old_router = gw.gateway.router
    slow.set_fault("slow:400")
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(chat(gw.url, "a.gguf")))
    worker.start()
    wait_until(lambda: gw.gateway.pool.inflight(old_router) == 1, what="request in flight")
    gw.path.write_text(config_text({"llamacpp:fresh": fresh}), encoding="utf-8")
    assert gw.reload_check() is True
    assert chat(gw.url, "a.gguf").routed_to == "llamacpp:fresh"
    worker.join(10)
    assert results[0].status == 200 and results[0].routed_to == "llamacpp:slow"
    # The retired router is closed once its last request is done (its session with it).
    wait_until(
        lambda: old_router._session is None or old_router._session.closed,
        what="the old router to close",
    )


def _lines(stream: IO[str], sink: queue.Queue[str]) -> None:
    for line in stream:
        sink.put(line)


def _expect(sink: queue.Queue[str], pattern: str, timeout: float = 10.0) -> str:
    while True:
        line = sink.get(timeout=timeout)
        if re.search(pattern, line):
            return line


def test_serve_sighup_and_sigterm(fake_server: FakeFactory, tmp_path: Path) -> None:
    """serve(): prints its URL first, logs located errors on SIGHUP, exits 0 on SIGTERM."""
    fake = fake_server("llamacpp", ["a.gguf"])
    path = tmp_path / "serve.yaml"
    path.write_text(config_text({"llamacpp:a": fake}), encoding="utf-8")
    code = (
        "import asyncio, sys; from routing._gateway_server import serve; "
        "asyncio.run(serve(sys.argv[1], '127.0.0.1', 0))"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        url = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", first)
        assert url, first
        errors: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(proc.stderr, errors), daemon=True).start()
        assert chat(url.group(1), "a.gguf").status == 200
        _expect(errors, r"routing\.access .*status=200")
        path.write_text("version: 1\nproviders: {}\nbogus: 1\n", encoding="utf-8")
        os.utime(path, ns=(1, 1))  # the poll ignores it only if size and mtime both match
        proc.send_signal(signal.SIGHUP)
        _expect(errors, re.escape(str(path)) + r":\d+:\d+: ")
        assert chat(url.group(1), "a.gguf").status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _unreadable(path: Path) -> None:
    """Replace ``path`` by a file that cannot be read: mode 000, or for root (who reads
    those) a link to /proc/self/mem, a regular file whose first read fails with EIO."""
    path.unlink()
    if os.geteuid() == 0:
        path.symlink_to("/proc/self/mem")
    else:
        path.write_text("version: 1\n", encoding="utf-8")
        path.chmod(0)


def _spoil(path: Path, kind: str, good: str) -> None:
    """Put a bad file of ``kind`` where the config was (``good`` is the config's text)."""
    if kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "unreadable":
        _unreadable(path)
    else:
        text = {
            "empty": "",
            "dashes": "---\n",
            "tilde": "~\n",
            "null": "null\n",
            "int_5000_digits": good.replace("ttl: 30", "ttl: " + "9" * 5000),
            "nan": good.replace("ttl: 30", "ttl: .nan"),
            "invalid_yaml": good + "rules: [oops\n",
        }[kind]
        path.write_text(text, encoding="utf-8")


def _reload_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "routing.reload" and r.levelno >= logging.ERROR]


def _assert_one_located_line(record: logging.LogRecord, path: Path) -> None:
    """A reload failure is logged as one line, located, with no traceback."""
    message = record.getMessage()
    assert "\n" not in message
    assert record.exc_info is None and "Traceback" not in message
    assert re.search(re.escape(str(path)) + r":\d+:\d+: \$", message), message


BAD_KINDS = [
    "empty",
    "dashes",
    "tilde",
    "null",
    "int_5000_digits",
    "nan",
    "invalid_yaml",
    "unreadable",
    "fifo",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_file_is_survived_and_the_next_valid_edit_applied(
    kind: str,
    fake_server: FakeFactory,
    gateway: GatewayFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bad file is logged once (one located line, no traceback) while polls go on, the old
    config keeps serving, and the next valid edit is applied."""
    caplog.set_level(logging.INFO, logger="routing.reload")
    a = fake_server("llamacpp", ["a.gguf"])
    b = fake_server("llamacpp", ["b.gguf"])
    good = config_text({"llamacpp:a": a})
    gw = gateway(good, reload_interval=0.01)
    watcher = gw.gateway.watcher
    assert watcher is not None
    _spoil(gw.path, kind, good)
    wait_until(lambda: watcher.failures == 1, what="the failed reload")
    checks = watcher.checks
    wait_until(lambda: watcher.checks >= checks + 5, what="more polls of the bad file")
    assert watcher.failures == 1
    [record] = _reload_errors(caplog)
    _assert_one_located_line(record, gw.path)
    reply = chat(gw.url, "a.gguf")
    assert reply.status == 200 and reply.routed_to == "llamacpp:a"
    assert gw.gateway.pool.generation == 0
    if gw.path.is_symlink() or not gw.path.is_file():
        gw.path.unlink()
    else:
        gw.path.chmod(0o644)
    gw.path.write_text(config_text({"llamacpp:a": a, "llamacpp:b": b}), encoding="utf-8")
    wait_until(lambda: gw.gateway.pool.generation == 1, what="the valid edit to be applied")
    reply = chat(gw.url, "b.gguf")
    assert reply.status == 200 and reply.routed_to == "llamacpp:b"
    assert watcher.last_error is None


def test_sighup_after_a_failure_applies_the_fixed_file(
    fake_server: FakeFactory,
    gateway: GatewayFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With polling out of the way, SIGHUP alone reloads: a bad file is refused, then the
    fixed file is applied by the next SIGHUP; the same bad file on SIGHUP is logged again."""
    caplog.set_level(logging.ERROR, logger="routing.reload")
    a = fake_server("llamacpp", ["a.gguf"])
    b = fake_server("llamacpp", ["b.gguf"])
    good = config_text({"llamacpp:a": a})
    gw = gateway(good, reload_interval=3600)
    watcher = gw.gateway.watcher
    assert watcher is not None
    _spoil(gw.path, "nan", good)
    gw.loop.call(watcher.trigger)
    wait_until(lambda: watcher.failures == 1, what="the refused reload")
    gw.loop.call(watcher.trigger)
    wait_until(lambda: watcher.failures == 2, what="the second refused reload")
    assert len(_reload_errors(caplog)) == 2  # asked twice, told twice
    gw.path.write_text(config_text({"llamacpp:a": a, "llamacpp:b": b}), encoding="utf-8")
    gw.loop.call(watcher.trigger)
    wait_until(lambda: gw.gateway.pool.generation == 1, what="the SIGHUP reload")
    assert chat(gw.url, "b.gguf").routed_to == "llamacpp:b"


def test_touched_invalid_file_is_not_logged_again(
    fake_server: FakeFactory,
    gateway: GatewayFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An invalid file whose mtime keeps moving but whose bytes stay the same is logged once."""
    caplog.set_level(logging.ERROR, logger="routing.reload")
    a = fake_server("llamacpp", ["a.gguf"])
    gw = gateway(config_text({"llamacpp:a": a}))
    gw.path.write_text("version: 1\nproviders: {}\n", encoding="utf-8")
    assert gw.reload_check() is False
    for step in range(1, 4):
        os.utime(gw.path, ns=(step * 10**9, step * 10**9))
        assert gw.reload_check() is False
    watcher = gw.gateway.watcher
    assert watcher is not None
    assert (watcher.attempts, watcher.failures) == (1, 1)
    [record] = _reload_errors(caplog)
    _assert_one_located_line(record, gw.path)


def test_any_exception_while_loading_or_applying_is_survived(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not only ConfigError: a ValueError from loading and a RuntimeError from applying are
    each one located line; the watcher goes on and applies the next file."""
    caplog.set_level(logging.ERROR, logger="routing.reload")
    path = tmp_path / "routing.yaml"
    path.write_text(
        config_text({}) + "  ollama:\n    api: ollama\n    instances:\n"
        "      default: {port: 11434}\n",
        encoding="utf-8",
    )
    calls = {"parse": 0, "apply": 0}
    applied: list[Config] = []

    def parse_once_broken(text: str, **options: Any) -> Config:
        calls["parse"] += 1
        if calls["parse"] == 1:
            raise ValueError("loader broke\nacross two lines")
        return parse_config(text, **options)

    def apply(config: Config) -> None:
        calls["apply"] += 1
        if calls["apply"] == 1:
            raise RuntimeError("router would not start")
        applied.append(config)

    monkeypatch.setattr("routing._reload.parse_config", parse_once_broken)

    async def scenario() -> list[bool]:
        watcher = ConfigWatcher(str(path), apply)
        results = []
        for port in (11435, 11436, 11437):
            path.write_text(
                path.read_text("utf-8").replace(f"port: {port - 1}", f"port: {port}"),
                encoding="utf-8",
            )
            results.append(await watcher.check())
        return results

    assert asyncio.run(scenario()) == [False, False, True]
    assert applied[0].instances["ollama:default"].url == "http://127.0.0.1:11437"
    first, second = _reload_errors(caplog)
    assert first.getMessage().endswith(f"{path}:1:1: $: ValueError: loader broke across two lines")
    assert second.getMessage().endswith(f"{path}:1:1: $: RuntimeError: router would not start")
    for record in (first, second):
        _assert_one_located_line(record, path)


def test_watcher_never_blocks_on_a_fifo(tmp_path: Path) -> None:
    """A watcher created on a FIFO, and checking one, returns at once (no reader waits for a
    writer that never comes)."""
    path = tmp_path / "routing.yaml"
    os.mkfifo(path)

    async def scenario() -> tuple[bool, str | None]:
        watcher = ConfigWatcher(str(path), lambda config: None)
        applied = await asyncio.wait_for(watcher.check(force=True), 10)
        return applied, watcher.last_error

    applied, error = asyncio.run(scenario())
    assert applied is False
    assert error is not None and "is a named pipe (FIFO)" in error
