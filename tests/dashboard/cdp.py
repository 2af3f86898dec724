"""A headless Chromium driven over the DevTools protocol with aiohttp's websocket client.

Just what the dashboard tests need: open a URL, evaluate JavaScript, wait for a condition by
polling with a deadline, take a screenshot.  Debian's ``chromium`` package provides the
browser; :func:`chromium_path` is None where it is absent (the tests then skip).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-crash-reporter",
    "--disable-breakpad",
    "--hide-scrollbars",
    "--window-size=1200,800",
    "--remote-debugging-port=0",
)


def chromium_path() -> str | None:
    """The browser to drive: ``$ROUTING_CHROMIUM``, else ``chromium`` on PATH, else None."""
    return os.environ.get("ROUTING_CHROMIUM") or shutil.which("chromium")


class CdpError(Exception):
    """The browser answered a command with an error, or did not answer in time."""


class Browser:
    """One Chromium process with a fresh profile and one page (``async with``)."""

    def __init__(self, executable: str, profile: Path) -> None:
        self.executable = executable
        self.profile = profile
        self.process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Browser:
        self.process = await asyncio.create_subprocess_exec(
            self.executable,
            *FLAGS,
            f"--user-data-dir={self.profile}",
            "about:blank",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            port = await self._devtools_port(deadline=time.monotonic() + 20)
            self._http = aiohttp.ClientSession()
            async with self._http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            page = next(t for t in targets if t["type"] == "page")
            self._ws = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _devtools_port(self, deadline: float) -> int:
        """The port Chromium chose, from ``DevToolsActivePort`` in its profile."""
        marker = self.profile / "DevToolsActivePort"
        while True:
            with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
                return int(marker.read_text().splitlines()[0])
            assert self.process is not None
            if self.process.returncode is not None:
                raise CdpError(f"chromium exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise CdpError("chromium did not open its DevTools port in time")
            await asyncio.sleep(0.05)

    async def send(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """One DevTools command and its result (events in between are dropped)."""
        assert self._ws is not None
        ident = next(self._ids)
        await self._ws.send_json({"id": ident, "method": method, "params": params or {}})
        async with asyncio.timeout(timeout):
            while True:
                message = await self._ws.receive_json()
                if message.get("id") != ident:
                    continue
                if "error" in message:
                    raise CdpError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def open(self, url: str) -> None:
        """Navigate the page to ``url`` and wait for its document to be there."""
        await self.send("Page.enable")
        await self.send("Page.navigate", {"url": url})
        await self.wait_for("document.readyState === 'complete'", what=f"{url} to load")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(
        self, expression: str, *, timeout: float = 10.0, what: str = "the condition"
    ) -> Any:
        """Poll ``expression`` until it is truthy; its value, or AssertionError at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                shown = await self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(
                    f"timed out waiting for {what} ({expression}); the page "
                    f"shows:\n{str(shown)[:3000]}"
                )
            await asyncio.sleep(0.05)

    async def screenshot(self) -> bytes:
        """A PNG of the page as a person sees it."""
        result = await self.send("Page.captureScreenshot", {"format": "png"})
        return base64.b64decode(result["data"])

    async def close(self) -> None:
        """Close the connection and stop the browser (its whole process group)."""
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
