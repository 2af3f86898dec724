"""Run a fake server in a child process (so it does not share the benchmark's event loop)."""

from __future__ import annotations

import asyncio
import sys


class FakeProcess:
    """``python -m fake_servers KIND --model M --port P`` as a child process."""

    def __init__(self, kind: str, model: str, port: int = 0) -> None:
        self.kind = kind
        self.model = model
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> FakeProcess:
        """Start it and wait for its ``listening on`` line (the port is kept for restarts)."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fake_servers",
            self.kind,
            "--model",
            self.model,
            "--port",
            str(self.port),
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 15)).decode()
        if "listening on" not in line:
            raise RuntimeError(f"fake did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        return self

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    async def kill(self) -> None:
        """SIGKILL it (a crash, not a clean shutdown) and reap it."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None
