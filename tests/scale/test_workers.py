"""``routing serve --workers N``: one port, every worker answering, signals, restarts, metrics."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from scale_support import Serve, alive, chat, config_text, request, wait_for

from fake_servers import LoopThread
from fake_servers.sync import FakeServerHandle

MODEL = "w.gguf"


@pytest.fixture(scope="module")
def fake(fake_loop: LoopThread) -> Iterator[FakeServerHandle]:
    """One fake llama.cpp for the module."""
    handle = FakeServerHandle.start_new(fake_loop, "llamacpp", [MODEL])
    yield handle
    handle.stop()
    handle.check()


@pytest.fixture(scope="module")
def config(fake: FakeServerHandle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config routing MODEL to the fake."""
    path = tmp_path_factory.mktemp("workers") / "serve.yaml"
    path.write_text(config_text({"a": fake.url}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fleet(config: Path) -> Iterator[Serve]:
    """``routing serve --workers 2``, shared by the tests that leave it running."""
    serve = Serve(config, "--workers", "2")
    try:
        serve.wait_listening()
        wait_for(lambda: len(serve.worker_pids()) == 2, "both workers on /status")
        yield serve
    finally:
        serve.stop()


def _worker_of(url: str) -> str:
    return request(url, path="/healthz").headers["x-routing-worker"]


def test_two_workers_answer_on_one_port(fleet: Serve) -> None:
    """New connections to the one port reach both workers, two processes other than the parent."""
    seen: set[str] = set()
    wait_for(lambda: seen.add(_worker_of(fleet.url)) or seen == {"0", "1"}, "both workers")
    pids = fleet.worker_pids()
    assert len(set(pids.values())) == 2
    assert fleet.proc.pid not in pids.values()
    assert chat(fleet.url, MODEL).status == 200


def _metric(text: str, name: str, **labels: str) -> float:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    series = name + ("{" + inner + "}" if inner else "")
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_sum_every_worker(fleet: Serve) -> None:
    """A scrape sums the counters of both workers, whichever worker takes it."""
    before = request(fleet.url, path="/metrics").body.decode()
    served: dict[str, int] = {"0": 0, "1": 0}

    def one() -> bool:
        reply = chat(fleet.url, MODEL)
        assert reply.status == 200
        served[reply.headers["x-routing-worker"]] += 1
        return min(served.values()) >= 3

    wait_for(one, "3 requests served by each worker", interval=0)
    total = sum(served.values())
    for _ in range(4):  # whichever worker answers the scrape, the sum is the same
        after = request(fleet.url, path="/metrics").body.decode()
        labels = {"instance": "llamacpp:a", "model": MODEL, "outcome": "ok"}
        assert (
            _metric(after, "routing_requests_total", **labels)
            - _metric(before, "routing_requests_total", **labels)
        ) == total
        route = {"method": "POST", "route": "/v1/chat/completions", "status": "200"}
        assert (
            _metric(after, "routing_gateway_responses_total", **route)
            - _metric(before, "routing_gateway_responses_total", **route)
        ) == total
        assert _metric(after, "routing_workers") == 2


def test_sighup_reloads_every_worker(fleet: Serve) -> None:
    """SIGHUP to the parent reloads the config in every worker (each one's generation moves)."""
    before = {
        w["index"]: w["generation"] for w in request(fleet.url, path="/status").json()["workers"]
    }
    fleet.proc.send_signal(signal.SIGHUP)

    def reloaded() -> bool:
        workers = request(fleet.url, path="/status").json()["workers"]
        return len(workers) == 2 and all(w["generation"] > before[w["index"]] for w in workers)

    wait_for(reloaded, "both workers to reload")


def _served(url: str) -> bool:
    try:
        return chat(url, MODEL).status == 200
    except OSError:  # a connection queued on the killed worker's socket is reset
        return False


def test_killed_worker_is_restarted(fleet: Serve) -> None:
    """A SIGKILLed worker is replaced by a new process; the port keeps answering meanwhile."""
    pids = wait_for(
        lambda: (
            p
            if len(p := fleet.worker_pids()) == 2 and all(alive(pid) for pid in p.values())
            else None
        ),
        "two live workers",
    )
    with contextlib.suppress(ProcessLookupError):  # died meanwhile: the restart is checked
        os.kill(pids[0], signal.SIGKILL)
    wait_for(lambda: not alive(pids[0]), "the killed worker to be reaped")
    wait_for(lambda: _served(fleet.url), "the surviving worker to serve", timeout=10)

    def replaced() -> bool:
        try:
            now = fleet.worker_pids()
        except OSError:  # the answering worker went away mid-request: ask again
            return False
        return len(now) == 2 and now[0] != pids[0] and now[1] == pids[1]

    wait_for(replaced, "worker 0 restarted", timeout=60)
    assert "restarting" in fleet.log.read_text()


def test_sigterm_stops_every_worker(config: Path) -> None:
    """SIGTERM to the parent stops every worker: exit 0, no worker left, the port free again."""
    serve = Serve(config, "--workers", "2")
    try:
        url = serve.wait_listening()
        pids = wait_for(lambda: p if len(p := serve.worker_pids()) == 2 else None, "2 workers")
        assert serve.stop(signal.SIGTERM) == 0
        wait_for(lambda: not any(alive(pid) for pid in pids.values()), "workers gone")
        with pytest.raises(OSError):
            request(url, path="/healthz", timeout=2)
    finally:
        serve.stop(signal.SIGKILL)


def test_workers_that_keep_crashing_give_up(config: Path, tmp_path: Path) -> None:
    """Workers that keep exiting (the config became invalid) make the parent give up: exit 4."""
    path = tmp_path / "crash.yaml"
    path.write_text(config.read_text(), encoding="utf-8")
    serve = Serve(path, "--workers", "2")
    try:
        serve.wait_listening()
        pids = wait_for(lambda: p if len(p := serve.worker_pids()) == 2 else None, "2 workers")
        path.write_text("version: 1\nbogus: [\n", encoding="utf-8")  # a new worker cannot start
        os.kill(pids[0], signal.SIGKILL)
        assert serve.proc.wait(60) == 4
        assert "giving up" in serve.log.read_text()
        wait_for(lambda: not any(alive(pid) for pid in pids.values()), "workers gone")
    finally:
        serve.stop(signal.SIGKILL)


def test_workers_must_be_positive(config: Path) -> None:
    """``--workers 0`` is a usage error (exit 2)."""
    done = subprocess.run(
        [sys.executable, "-m", "routing.cli", "serve", str(config), "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "must be at least 1" in done.stderr
