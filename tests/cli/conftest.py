"""The CLI tests reuse the scale tests' ``routing serve`` helpers (``scale_support``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "scale"))
