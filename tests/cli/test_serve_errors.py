"""`routing serve` start-up failures: one line on stderr, a documented exit code, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

CONFIG = (
    "version: 1\nproviders:\n  llamacpp:\n    api: openai\n    instances:\n      a: {port: 9}\n"
)


def test_busy_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A port already in use: exit 2 and a single line naming the address, no traceback."""
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "routing.cli", "serve", str(path), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [f"error: cannot listen on 127.0.0.1:{port}: address already in use"]
    assert "Traceback" not in done.stderr and done.stdout == ""
