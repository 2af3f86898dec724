"""``routing demo`` lands every request where expected and prints the table."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from routing import _demo as demo


def test_run_demo_exits_0_with_expected_rows() -> None:
    """run_demo() returns 0; its table shows each request's status, instance and answerer."""
    out = io.StringIO()
    assert demo.run_demo(out) == 0
    text = out.getvalue()
    assert "demo ok: all 8 requests landed where expected" in text
    rows = {line.split("  ")[0]: line for line in text.splitlines()}
    assert "llamacpp:qwen3-coder-30b" in rows[demo.MODEL_A]
    assert "llamacpp-a (llamacpp port" in rows[demo.MODEL_A]
    assert "llamacpp-b (llamacpp port" in rows[demo.MODEL_B]
    assert "ollama (ollama port" in rows["llama3.2 (Ollama name)"]
    assert "lmstudio (lmstudio port" in rows[demo.MODEL_LMSTUDIO]
    assert " 404 " in rows["mistral-7b (nobody serves it)"]
    assert " 503 " in rows["llama3.2 after stopping the Ollama fake"]


def test_embedded_config_matches_configs_demo_yaml() -> None:
    """The copy inside the package (for non-editable installs) equals configs/demo.yaml."""
    shipped = Path(__file__).parents[2] / "configs" / "demo.yaml"
    assert shipped.read_text(encoding="utf-8") == demo.DEMO_CONFIG


def test_demo_config_without_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without configs/demo.yaml the embedded copy is used, ports substituted."""

    monkeypatch.setattr(demo, "CONFIG_FILE", Path("/nonexistent/demo.yaml"))
    ports = {"llamacpp-a": 1001, "llamacpp-b": 1002, "ollama": 1003, "lmstudio": 1004}
    config = demo.demo_config(ports)
    assert config.instances["ollama:default"].url == "http://127.0.0.1:1003"
    assert config.instances["llamacpp:qwen25-coder-7b"].url == "http://127.0.0.1:1002"
