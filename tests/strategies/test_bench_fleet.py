"""benchmarks/bench_fleet.py: its figures are computed right, and `--resolve-only` runs
(a quick resolve-cost run per strategy, no real servers)."""

from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_fleet.py"


@functools.cache
def _module() -> ModuleType:
    """The script as a module (registered, as dataclasses need; sys.path left as it was)."""
    spec = importlib.util.spec_from_file_location("bench_fleet", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    sys.modules["bench_fleet"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def test_mode_figures() -> None:
    """Cache share sums cache_n over all prompt tokens, hops count server changes within a
    conversation, throughput is turns per second of wall time."""
    bench = _module()
    turns = [
        bench.Turn(0, 0, 1.0, "llamacpp:s0", 0, 100),
        bench.Turn(0, 1, 3.0, "llamacpp:s1", 0, 120),
        bench.Turn(0, 2, 2.0, "llamacpp:s1", 110, 20),
        bench.Turn(1, 0, 5.0, "llamacpp:s0", 0, 100),
    ]
    r = bench.ModeResult("x", 4.0, turns)
    assert r.cache_share == 110 / 450
    assert r.hops == 1 and r.median == 2.5 and r.throughput == 1.0
    assert r.per_server == {"llamacpp:s0": 2, "llamacpp:s1": 2}


def test_contexts_are_long_and_distinct() -> None:
    """Each conversation's context is its own from the first word, and long (~700 words)."""
    bench = _module()
    a, b = bench.context(0, 700), bench.context(1, 700)
    assert a.split()[:2] != b.split()[:2] and 690 <= len(a.split()) <= 710


def test_resolve_only_prints_a_row_per_strategy() -> None:
    """`--resolve-only` prints the resolve table with a numeric median for each strategy."""
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--resolve-only",
            "--resolve-calls",
            "300",
            "--resolve-repeats",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for strategy in ("first", "round-robin", "least-busy", "sticky"):
        row = re.search(rf"^\| {strategy} \| ([0-9.]+) µs \|", proc.stdout, re.MULTILINE)
        assert row is not None and float(row.group(1)) > 0, proc.stdout
