"""Fixtures for the scale tests: ``routing serve`` processes (one or many workers)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))  # _nginx: nginx from deploy/
