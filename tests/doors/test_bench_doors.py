"""The doors benchmark runs (quick) and prints both doors' figures and their ratios."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_bench_doors_quick_prints_ratios() -> None:
    """`bench_doors.py --quick` exits 0 with a ratio for each backend and measure."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_doors.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = re.findall(
        r"^\| (lmstudio \(translated\)|llamacpp \(passed through\)) \| .+ \| "
        r"([0-9.]+)x \|$",
        proc.stdout,
        re.M,
    )
    assert len(rows) == 8
    assert all(float(ratio) > 0 for _, ratio in rows)
