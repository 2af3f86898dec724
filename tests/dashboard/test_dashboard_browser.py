"""The dashboard in a real headless Chromium: it asks for the admin key, shows the instances
and states of a running gateway over fakes, shows a decision's trace after a request, and
changes when an instance goes down.  Skipped, saying why, where ``chromium`` is absent.

``ROUTING_UPDATE_SCREENSHOT=1`` also writes the final screenshot to docs/dashboard.png.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cdp import Browser, chromium_path
from gateway_support import GatewayHandle, chat, config_text

FakeFactory = Callable[..., Any]
GatewayFactory = Callable[..., GatewayHandle]
DOCS = Path(__file__).parents[2] / "docs"
ADMIN = "rk-admin-of-the-dashboard-test-0123"
CLIENT = "rk-alice-of-the-dashboard-test-0123"
AUTH = """gateway:
  auth:
    keys:
      - {name: alice, key_env: ROUTING_UI_TEST_ALICE}
    admin_key_env: ROUTING_UI_TEST_ADMIN
"""

pytestmark = pytest.mark.skipif(
    chromium_path() is None,
    reason="chromium is not installed (Debian: apt-get install chromium); the dashboard's "
    "browser test needs a real browser",
)


def _row_state(instance: str) -> str:
    return (
        f"(document.querySelector('tr[data-instance=\"{instance}\"]') || "
        "{dataset: {}}).dataset.state"
    )


async def _scenario(browser: Browser, gw: GatewayHandle, fakes: dict[str, Any]) -> bytes:
    """Drive the page through the whole story; the final screenshot."""
    await browser.open(gw.url + "/ui")
    await browser.wait_for("!document.getElementById('login').hidden", what="the admin key form")
    await browser.evaluate(
        "document.getElementById('admin-key').value = 'not-the-key';"
        "document.getElementById('login').requestSubmit()"
    )
    await browser.wait_for(
        "document.getElementById('login-error').textContent === 'That is not the admin key.'",
        what="the wrong key refused",
    )
    await browser.evaluate(
        f"document.getElementById('admin-key').value = {json.dumps(ADMIN)};"
        "document.getElementById('login').requestSubmit()"
    )
    states = " && ".join(f"{_row_state(key)} === 'READY'" for key in fakes)
    await browser.wait_for(states, what="every instance READY")
    assert await browser.evaluate("sessionStorage.getItem('routing-admin-key')") == ADMIN
    models = await browser.evaluate(
        "document.querySelector('tr[data-instance=\"ollama:o\"]').cells[2].textContent"
    )
    assert models == "llama3:latestqwen2.5:7b (loadable)"

    await asyncio.to_thread(fakes["llamacpp:b"].stop)
    await browser.wait_for(
        f"{_row_state('llamacpp:b')} === 'DOWN'", timeout=15, what="llamacpp:b shown DOWN"
    )
    assert await browser.evaluate(_row_state("llamacpp:a")) == "READY"
    b_models = await browser.evaluate(
        "document.querySelector('tr[data-instance=\"llamacpp:b\"]').cells[2].textContent"
    )
    assert b_models == "b.gguf"  # its last known models, not "loadable"

    for _ in range(3):
        reply = await asyncio.to_thread(
            chat, gw.url, "a.gguf", headers={"Authorization": f"Bearer {CLIENT}"}
        )
        assert reply.status == 200 and reply.routed_to == "llamacpp:a"
    newest = "document.querySelector('#decisions details.decision')"
    await browser.wait_for(
        "document.querySelectorAll('details.decision').length === 3 && "
        f"{newest}.open && "
        f"{newest}.querySelector('tr.chosen') && "
        f"{newest}.querySelector('tr.chosen').textContent.includes("
        "'llamacpp:a')",
        what="the decision's trace",
    )
    summary = await browser.evaluate(f"{newest}.querySelector('summary').textContent")
    assert "a.gguf → llamacpp:a" in summary and "key alice" in summary
    trace = await browser.evaluate(
        f"[...{newest}.querySelectorAll('tr')].slice(1).map(r => "
        "[...r.cells].map(c => c.textContent))"
    )
    assert [row[1:3] for row in trace] == [["llamacpp:a", "READY"], ["llamacpp:b", "DOWN"]]
    assert trace[0][0] == "→" and trace[0][5].startswith("chosen")
    rate = await browser.wait_for(
        "(() => { const c = document.querySelector('tr[data-instance=\"llamacpp:a\"]').cells;"
        " return parseFloat(c[4].textContent) > 0 && c[5].textContent.endsWith(' ms')"
        " && c[4].textContent; })()",
        what="a request rate for llamacpp:a",
    )
    assert rate.endswith("/s")
    keys_row = await browser.evaluate("document.querySelector('#keys tr').textContent")
    assert keys_row.startswith("alice3")
    png = await browser.screenshot()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    return png


def test_dashboard_in_chromium(
    fake_server: FakeFactory,
    gateway: GatewayFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """In Chromium: key form, states, loadable models, DOWN, traces, rate, key use, screenshot."""
    monkeypatch.setenv("ROUTING_UI_TEST_ADMIN", ADMIN)
    monkeypatch.setenv("ROUTING_UI_TEST_ALICE", CLIENT)
    fakes = {
        "llamacpp:a": fake_server("llamacpp", ["a.gguf"]),
        "llamacpp:b": fake_server("llamacpp", ["b.gguf"]),
        "ollama:o": fake_server("ollama", ["llama3:latest", "qwen2.5:7b"]),
    }
    rules = '  - match: {model: "*.gguf"}\n    route: llamacpp\n  - route: ollama\n'
    gw = gateway(
        config_text(fakes, rules=rules, extra=AUTH, defaults="  probe: {timeout: 0.5, ttl: 0.2}\n")
    )
    executable = chromium_path()
    assert executable is not None

    async def run() -> bytes:
        async with Browser(executable, tmp_path / "profile") as browser:
            return await _scenario(browser, gw, fakes)

    png = asyncio.run(run())
    (tmp_path / "dashboard.png").write_bytes(png)
    if os.environ.get("ROUTING_UPDATE_SCREENSHOT"):
        DOCS.mkdir(exist_ok=True)
        (DOCS / "dashboard.png").write_bytes(png)
