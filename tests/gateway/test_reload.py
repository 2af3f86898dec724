"""Hot reload: new routes from a valid file, the old config kept on an invalid one,
in-flight requests finishing on the router they started on, and SIGHUP under serve()."""

from __future__ import annotations

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

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]


def test_valid_new_file_gives_new_routes(fake_server: FakeFactory,
                                         gateway: GatewayFactory) -> None:
    """Polling picks up a changed file: a model added there is routed at once."""
    a = fake_server("llamacpp", ["a.gguf"])
    b = fake_server("llamacpp", ["b.gguf"])
    gw = gateway(config_text({"llamacpp:a": a}), reload_interval=0.02)
    assert chat(gw.url, "b.gguf").status == 404
    gw.path.write_text(config_text({"llamacpp:a": a, "llamacpp:b": b}), encoding="utf-8")
    wait_until(lambda: gw.gateway.pool.generation == 1, what="the reload")
    reply = chat(gw.url, "b.gguf")
    assert reply.status == 200 and reply.routed_to == "llamacpp:b"


def test_unchanged_file_is_not_reloaded(fake_server: FakeFactory,
                                        gateway: GatewayFactory) -> None:
    """Rewriting the same bytes does not rebuild the router (probe caches survive)."""
    a = fake_server("llamacpp", ["a.gguf"])
    gw = gateway(config_text({"llamacpp:a": a}))
    gw.path.write_text(gw.path.read_text(encoding="utf-8"), encoding="utf-8")
    assert gw.reload_check() is False
    assert gw.gateway.pool.generation == 0


def test_invalid_new_file_keeps_old_config(fake_server: FakeFactory, gateway: GatewayFactory,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """An invalid new file is refused with located errors; the old config keeps serving."""
    a = fake_server("llamacpp", ["a.gguf"])
    gw = gateway(config_text({"llamacpp:a": a}))
    caplog.set_level(logging.ERROR, logger="routing.reload")
    gw.path.write_text("version: 1\nproviders:\n  llamacpp:\n    api: nonsense\n",
                       encoding="utf-8")
    assert gw.reload_check() is False
    message = "\n".join(r.getMessage() for r in caplog.records if r.name == "routing.reload")
    assert re.search(re.escape(str(gw.path)) + r":\d+:\d+: \$\.providers", message), message
    reply = chat(gw.url, "a.gguf")
    assert reply.status == 200 and reply.routed_to == "llamacpp:a"
    assert gw.gateway.pool.generation == 0


def test_in_flight_request_survives_reload(fake_server: FakeFactory,
                                           gateway: GatewayFactory) -> None:
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
    wait_until(lambda: old_router._session is None or old_router._session.closed,
               what="the old router to close")


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
    code = ("import asyncio, sys; from routing.gateway import serve; "
            "asyncio.run(serve(sys.argv[1], '127.0.0.1', 0))")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
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
