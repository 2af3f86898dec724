"""`routing explain` and `routing status` against fake servers: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from routing.cli import main


def _config(tmp_path: Path, a_port: int, b_port: int) -> str:
    path = tmp_path / "routing.yaml"
    path.write_text(
        "version: 1\n"
        "defaults: {probe: {timeout: 0.5}}\n"
        "providers:\n"
        "  llamacpp:\n    api: openai\n    instances:\n"
        f"      qwen3-coder-30b: {{port: {a_port}}}\n"
        f"      qwen25-coder-7b: {{port: {b_port}}}\n",
        encoding="utf-8",
    )
    return str(path)


def test_explain_json_names_the_instance_serving_the_model(
    fake_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints the contract keys; the second model resolves to the second instance."""
    a = fake_server("llamacpp", ["qwen3-coder-30b.gguf"])
    b = fake_server("llamacpp", ["qwen2.5-coder-7b-instruct-q8_0.gguf"])
    cfg = _config(tmp_path, a.port, b.port)
    code = main(["explain", cfg, "--model", "qwen2.5-coder-7b-instruct-q8_0.gguf", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["instance"] == "llamacpp:qwen25-coder-7b"
    assert out["provider"] == "llamacpp"
    assert out["base_url"] == f"http://127.0.0.1:{b.port}/v1"
    assert out["api"] == "openai"
    assert out["model"] == "qwen2.5-coder-7b-instruct-q8_0.gguf"
    assert out["reason"]
    assert [(c["instance"], c["chosen"]) for c in out["candidates"]] == [
        ("llamacpp:qwen3-coder-30b", False),
        ("llamacpp:qwen25-coder-7b", True),
    ]
    assert set(out["candidates"][0]) >= {"instance", "state", "models", "chosen", "why"}


def test_explain_no_route_prints_error_and_candidates_exit_3(
    fake_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model nobody serves: exit 3, `error` and every candidate with its state and models."""
    a = fake_server("llamacpp", ["a.gguf"])
    b = fake_server("llamacpp", ["b.gguf"])
    b.stop()
    cfg = _config(tmp_path, a.port, b.port)
    code = main(["explain", cfg, "--model", "b.gguf", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 3
    assert "b.gguf" in out["error"]
    assert {c["instance"]: (c["state"], c["models"]) for c in out["candidates"]} == {
        "llamacpp:qwen3-coder-30b": ("READY", ["a.gguf"]),
        "llamacpp:qwen25-coder-7b": ("DOWN", []),
    }


def test_explain_human_output_and_provider_instance(
    fake_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--provider P:instance is honoured and the text output marks the chosen candidate."""
    a = fake_server("llamacpp", ["a.gguf"])
    b = fake_server("llamacpp", ["b.gguf"])
    cfg = _config(tmp_path, a.port, b.port)
    assert main(["explain", cfg, "--provider", "llamacpp:qwen25-coder-7b"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("-> llamacpp:qwen25-coder-7b")
    assert " * llamacpp:qwen25-coder-7b" in out


def test_status_lists_every_instance(
    fake_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`routing status --json` probes every instance and reports state and models."""
    a = fake_server("llamacpp", ["a.gguf"])
    b = fake_server("llamacpp", ["b.gguf"], fault="loading")
    cfg = _config(tmp_path, a.port, b.port)
    assert main(["status", cfg, "--json"]) == 0
    rows = {r["instance"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["llamacpp:qwen3-coder-30b"]["state"] == "READY"
    assert rows["llamacpp:qwen25-coder-7b"]["state"] == "LOADING"


def test_cli_errors_are_located_and_never_tracebacks(tmp_path: Path) -> None:
    """Bad config and bad usage exit 2 with a message, never a traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nproviders: {x: {api: nope, instances: {a: {port: 1}}}}\n")
    for argv in (["explain", str(bad)], ["validate", str(bad)], ["explain"], ["frobnicate"]):
        proc = subprocess.run(
            [sys.executable, "-m", "routing.cli", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2, (argv, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "routing.cli", "validate", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert f"{bad}:2:" in proc.stdout
