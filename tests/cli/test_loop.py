"""``routing serve --loop auto|asyncio|uvloop``: the factory, ``run``, and the logged loop;
the JSON parser and the GC settings ``serve`` logs beside it."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from scale_support import Serve, config_text, request

from routing._gateway_server import GC_THRESHOLD, _tune_gc
from routing._loop import LoopUnavailable, loop_factory, loop_name, run
from routing.errors import RoutingError

# Nothing listens on port 9 (discard): /healthz answers without a reachable instance.
CONFIG = config_text({"a": "http://127.0.0.1:9"})
LOGGED = re.compile(r" INFO routing\.gateway event loop: (\S+)$", re.MULTILINE)


@pytest.fixture
def unimportable_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import uvloop`` raises ImportError in this process, installed or not."""
    monkeypatch.setitem(sys.modules, "uvloop", None)


@pytest.fixture
def shadowed_uvloop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Child processes find a ``uvloop`` ahead of the real one that raises ImportError."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "uvloop.py").write_text('raise ImportError("uvloop shadowed by the test")\n')
    inherited = os.environ.get("PYTHONPATH")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(shadow), *([inherited] if inherited else [])])
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A minimal valid config file."""
    path = tmp_path / "routing.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


async def _running_loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_asyncio_has_no_factory() -> None:
    """``asyncio``: no factory, so asyncio.Runner makes its own loop."""
    assert loop_factory("asyncio") is None
    assert loop_name("asyncio") == "asyncio"


@pytest.mark.parametrize("choice", ["auto", "uvloop"])
def test_auto_and_uvloop_choose_uvloop_when_installed(choice: str) -> None:
    """``auto`` and ``uvloop`` give uvloop's factory when uvloop imports."""
    uvloop = pytest.importorskip("uvloop")
    assert loop_factory(choice) is uvloop.new_event_loop
    assert loop_name(choice) == "uvloop"


def test_auto_falls_back_to_asyncio_without_uvloop(unimportable_uvloop: None) -> None:
    """``auto`` without uvloop: asyncio's loop, no error."""
    assert loop_factory("auto") is None
    assert loop_name("auto") == "asyncio"


def test_uvloop_without_uvloop_names_the_extra(unimportable_uvloop: None) -> None:
    """``uvloop`` without uvloop: LoopUnavailable (a RoutingError) naming the speed extra."""
    with pytest.raises(LoopUnavailable, match=re.escape("pip install 'routing[speed]'")) as info:
        loop_factory("uvloop")
    assert isinstance(info.value, RoutingError)


def test_unknown_choice_is_a_value_error() -> None:
    """A choice outside LOOPS: ValueError listing the choices."""
    with pytest.raises(ValueError, match="auto, asyncio, uvloop"):
        loop_factory("trio")


def test_run_on_asyncio() -> None:
    """``run(coro, "asyncio")`` runs the coroutine on asyncio's own loop and returns its result."""
    loop_type = run(_running_loop_type(), "asyncio")
    assert loop_type.__module__.partition(".")[0] == "asyncio"


def test_run_on_uvloop() -> None:
    """``run(coro, "uvloop")`` runs the coroutine on a uvloop.Loop."""
    uvloop = pytest.importorskip("uvloop")
    assert issubclass(run(_running_loop_type(), "uvloop"), uvloop.Loop)


@pytest.mark.parametrize(("choice", "error"), [("uvloop", LoopUnavailable), ("trio", ValueError)])
def test_run_closes_the_coroutine_when_the_choice_fails(
    unimportable_uvloop: None, choice: str, error: type[Exception]
) -> None:
    """A choice that fails closes the coroutine it was given: no "never awaited" warning."""
    main = _running_loop_type()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(error):
            run(main, choice)
        assert inspect.getcoroutinestate(main) == inspect.CORO_CLOSED
        del main
        gc.collect()
    assert [str(w.message) for w in caught if "_running_loop_type" in str(w.message)] == []


def _serve_loops(serve: Serve) -> list[str]:
    """Serve until ``listening on``, check /healthz, stop; the loops its log names."""
    try:
        url = serve.wait_listening()
        assert request(url, path="/healthz").status == 200
    finally:
        code = serve.stop()
    log = serve.log.read_text(errors="replace")
    assert code == 0, log[-2000:]
    return LOGGED.findall(log)


def test_serve_loop_asyncio_logs_it_and_serves(config: Path) -> None:
    """``--loop asyncio``: one ``event loop: asyncio`` line on stderr, /healthz 200."""
    assert _serve_loops(Serve(config, "--loop", "asyncio")) == ["asyncio"]


def test_serve_loop_uvloop_logs_it_and_serves(config: Path) -> None:
    """``--loop uvloop``: one ``event loop: uvloop`` line on stderr, /healthz 200."""
    pytest.importorskip("uvloop")
    assert _serve_loops(Serve(config, "--loop", "uvloop")) == ["uvloop"]


def test_serve_default_is_auto(config: Path) -> None:
    """Without ``--loop``: the loop ``auto`` picks here."""
    assert _serve_loops(Serve(config)) == [loop_name("auto")]


def test_serve_logs_the_json_parser(config: Path) -> None:
    """One ``json parser: msgspec`` line when the extra is installed, ``json`` otherwise."""
    serve = Serve(config)
    _serve_loops(serve)
    parsers = re.findall(r" INFO routing\.gateway json parser: (\S+)$", serve.log.read_text(), re.M)
    assert parsers == ["msgspec" if importlib.util.find_spec("msgspec") else "json"]


GC_LOGGED = re.compile(r" INFO routing\.gateway gc: threshold (\d+), (\d+) objects frozen$", re.M)


def test_tune_gc_raises_the_first_threshold_and_freezes() -> None:
    """``_tune_gc``: generation 0 waits for GC_THRESHOLD allocations, the older generations
    keep theirs, and what exists now is frozen (never walked again)."""
    before = gc.get_threshold()
    try:
        _tune_gc()
        assert gc.get_threshold() == (GC_THRESHOLD, *before[1:])
        assert before[0] < GC_THRESHOLD
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_serve_logs_its_gc_settings(config: Path) -> None:
    """``serve`` logs one ``gc: threshold 10000, N objects frozen`` line, N over 1,000 (the
    config, routes and modules it froze)."""
    serve = Serve(config)
    _serve_loops(serve)
    logged = GC_LOGGED.findall(serve.log.read_text())
    assert len(logged) == 1, serve.log.read_text()[-2000:]
    assert int(logged[0][0]) == GC_THRESHOLD and int(logged[0][1]) > 1000


def test_every_worker_tunes_its_gc(config: Path) -> None:
    """``--workers 2``: each worker process logs its own GC line."""
    serve = Serve(config, "--workers", "2", "--loop", "asyncio")
    _serve_loops(serve)
    logged = GC_LOGGED.findall(serve.log.read_text())
    assert [threshold for threshold, _ in logged] == [str(GC_THRESHOLD)] * 2


def test_serve_default_without_uvloop_is_asyncio(config: Path, shadowed_uvloop: None) -> None:
    """Without ``--loop`` and without uvloop: served on asyncio, no error."""
    assert _serve_loops(Serve(config)) == ["asyncio"]


def test_serve_loop_uvloop_without_uvloop_exits_2(config: Path, shadowed_uvloop: None) -> None:
    """``--loop uvloop`` without uvloop: exit 2, one line naming the extra, no traceback."""
    argv = ["serve", str(config), "--port", "0", "--loop", "uvloop"]
    done = subprocess.run(
        [sys.executable, "-m", "routing.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: --loop uvloop: uvloop is not installed")
    assert "pip install 'routing[speed]'" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_every_worker_logs_its_loop(config: Path) -> None:
    """``--workers 2 --loop asyncio``: each worker logs ``event loop: asyncio``."""
    assert _serve_loops(Serve(config, "--workers", "2", "--loop", "asyncio")) == ["asyncio"] * 2
