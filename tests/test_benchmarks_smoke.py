"""Smoke tests of ``benchmarks/run.py`` (a quick run of two sections writes a report with
figures) and of ``benchmarks/soak_faults.py`` (a short soak of the gateway under faults)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_quick_run_writes_resolve_and_library_tables(tmp_path: Path) -> None:
    """`run.py --quick --only resolve,library` writes report.md with numeric resolve figures."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--out",
            str(tmp_path),
            "--only",
            "resolve,library",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "resolve done in" in proc.stdout
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## Resolve scaling" in report
    assert "## Library overhead" in report
    median = re.search(r"\| median, 1000 instances \| ([0-9.]+) µs \|", report)
    assert median is not None, report
    assert float(median.group(1)) > 0
    ratio = re.search(r"\| ratio to probe timeout \| ([0-9.]+)× of", report)
    assert ratio is not None, report
    assert float(ratio.group(1)) > 0


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    """An unknown `--only` section is a usage error, before anything runs."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--out",
            str(tmp_path),
            "--only",
            "nope",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "unknown section" in proc.stderr
    assert not (tmp_path / "report.md").exists()


def test_short_soak_under_faults_answers_every_request(tmp_path: Path) -> None:
    """A 4 s soak of `routing serve` under faults, a kill and an invalid reload exits 0:
    every request answered, none hung, no traceback, RSS and fds flat."""
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "soak_faults.py"),
            "--requests",
            "200",
            "--seconds",
            "4",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| lost (no HTTP answer) | 0 | = 0 | pass |" in proc.stdout
    r = json.loads(out.read_text(encoding="utf-8"))
    assert r["sent"] == 200 + 2 * r["warmup"]
    assert sum(r["status"].values()) == r["sent"]
    assert (r["lost"], r["hung"], r["broken"], r["tracebacks"], r["failures"]) == (0, 0, 0, 0, [])
    assert r["chaos"]["fake killed (SIGKILL)"] >= 1
    assert r["chaos"]["invalid configs written"] >= 1
    assert r["refused_reloads"] >= r["chaos"]["invalid configs written"]
    assert r["gateway_exit"] == 0
