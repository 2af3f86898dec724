"""`routing explain` shows, per candidate, its loaded models and in-flight count and the
strategy's reason (warm over cold); `routing status` shows loaded and loading models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from strategies_support import MODEL, config_text

from fake_servers.pytest_plugin import FakeServerFactory
from routing import cli

OTHER = "other.gguf"


def _fleet(fake_server: FakeServerFactory, tmp_path: Path, strategy: str) -> Path:
    cold = fake_server("llamacpp", [MODEL, OTHER, "third.gguf"])
    cold.set_router_mode(loaded=[OTHER], loading=["third.gguf"])
    warm = fake_server("llamacpp", [MODEL])
    path = tmp_path / "routing.yaml"
    path.write_text(
        config_text(
            {"llamacpp:router": cold.server, "llamacpp:single": warm.server}, strategy=strategy
        ),
        encoding="utf-8",
    )
    return path


def test_explain_json_shows_loaded_and_inflight(
    fake_server: FakeServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """explain --json: the warm single server is chosen; each candidate carries `loaded`
    and `inflight`; the router-mode one says `cold: must load` and who has it loaded."""
    path = _fleet(fake_server, tmp_path, "sticky")
    assert cli.main(["explain", str(path), "--model", MODEL, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["instance"] == "llamacpp:single" and "strategy sticky" in out["reason"]
    cands = {c["instance"]: c for c in out["candidates"]}
    assert cands["llamacpp:router"]["loaded"] == [OTHER]
    assert cands["llamacpp:single"]["loaded"] == [MODEL]
    assert {c["inflight"] for c in cands.values()} == {0}
    why = cands["llamacpp:router"]["why"]
    assert "cold: must load" in why and "llamacpp:single has the model loaded" in why
    assert cands["llamacpp:single"]["chosen"] is True


def test_explain_text_names_the_cold_candidate(
    fake_server: FakeServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """explain (text): the trace line of the router-mode server says `cold: must load`."""
    path = _fleet(fake_server, tmp_path, "first")
    assert cli.main(["explain", str(path), "--model", MODEL]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if "llamacpp:router" in ln)
    assert "cold: must load" in line


def test_status_json_rows_carry_loaded_and_loading(
    fake_server: FakeServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """status --json: the router-mode row lists its loaded and loading models; in-flight
    counts and server load fields are present."""
    path = _fleet(fake_server, tmp_path, "least-busy")
    code = cli.main(["status", str(path), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = json.loads(out)
    by = {r["instance"]: r for r in rows}
    assert (by["llamacpp:router"]["loaded"], by["llamacpp:router"]["loading"]) == (
        [OTHER],
        ["third.gguf"],
    )
    assert (by["llamacpp:single"]["server_busy"], by["llamacpp:single"]["slots"]) == (0, 4)
    assert {r["inflight"] for r in rows} == {0}
