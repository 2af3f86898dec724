"""``routing serve`` as a child process, plain HTTP calls, and polling with deadlines."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def config_text(urls: Mapping[str, str], *, strategy: str = "first") -> str:
    """A config routing every ``*.gguf`` model to the llama.cpp instances ``name -> url``."""
    lines = [
        "version: 1",
        "defaults:",
        "  probe: {timeout: 1.0, ttl: 2}",
        f"  strategy: {strategy}",
        "providers:",
        "  llamacpp:",
        "    api: openai",
        "    instances:",
    ]
    lines += [f'      {name}: {{url: "{url}"}}' for name, url in urls.items()]
    return "\n".join(lines) + "\n"


def wait_for(
    probe: Callable[[], T | None], what: str, timeout: float = 20.0, interval: float = 0.05
) -> T:
    """Call ``probe`` until it returns something other than None or False; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A port the OS just gave out (bound then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Reply:
    """Status, headers (lower-cased names) and body of one response."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


def request(
    url: str,
    method: str = "GET",
    path: str = "/",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One request on a new connection (so SO_REUSEPORT may pick another worker)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        sent = {"Connection": "close", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
    finally:
        conn.close()


def chat(url: str, model: str, headers: Mapping[str, str] | None = None) -> Reply:
    """A non-stream chat completion."""
    return request(
        url,
        "POST",
        "/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers,
    )


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Serve:
    """``routing serve CONFIG --port PORT [args]`` in a child process, stderr to a file."""

    def __init__(self, config: Path, *args: str, port: int = 0) -> None:
        self.log = config.with_suffix(f".{port}.{time.monotonic_ns()}.log")
        self._err = open(self.log, "wb")  # noqa: SIM115 (closed in stop())
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "routing.cli",
                "serve",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=self._err,
            env=env,
        )
        self.url = ""

    def wait_listening(self, timeout: float = 60.0) -> str:
        """Read the ``listening on URL`` line; return the URL."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, f"{line!r}; log: {self.log.read_text(errors='replace')[-2000:]}"
        self.url = match.group(1)
        return self.url

    def worker_pids(self) -> dict[int, int]:
        """``index -> pid`` of every worker that answered ``/status``."""
        status = request(self.url, path="/status").json()
        return {w["index"]: w["pid"] for w in status["workers"]}

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the process, wait for it (SIGKILL at the deadline); return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()
        return self.proc.returncode
