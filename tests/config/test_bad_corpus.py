"""The bad-config corpus: every mistake gets exit 2 and the exact located first issue."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from routing.cli import main
from routing.config import MAX_CONFIG_BYTES

BAD = Path(__file__).parent / "bad"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((BAD / "expected.yaml").read_text("utf-8"))
#: A variable the corpus uses as "not set"; the tests make sure it is not.
UNSET = "ROUTING_TEST_UNSET_HOST"

ISSUE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<path>\$.*?): (?P<message>.+)$"
)


def _materialise(name: str, entry: dict[str, Any], tmp_path: Path) -> Path:
    """The file to validate: the committed one, or one made in ``tmp_path``."""
    how = entry.get("generate")
    if how is None:
        return BAD / name
    target = tmp_path / name
    if how == "large":
        target.write_bytes(b"# padding\n" + b"x" * (MAX_CONFIG_BYTES + 1 - 10))
    elif how == "ten_mb":
        with target.open("wb") as out:
            out.truncate(10 * 1024 * 1024)
    elif how == "directory":
        target.mkdir()
    elif how != "missing":
        raise AssertionError(f"unknown generate: {how}")
    return target


def test_corpus_is_complete() -> None:
    """Every committed corpus file has an expectation and the corpus has at least 30 mistakes."""
    files = {p.name for p in BAD.iterdir() if p.name != "expected.yaml"}
    committed = {n for n, e in EXPECTED.items() if "generate" not in e}
    assert files == committed
    assert len(EXPECTED) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_config(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`routing validate` exits 2 and prints FILE:LINE:COL: PATH: message first, as expected."""
    monkeypatch.delenv(UNSET, raising=False)
    entry = EXPECTED[name]
    path = _materialise(name, entry, tmp_path)
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert err == ""
    first = out.splitlines()[0]
    prefix = f"{path}:{entry['line']}:{entry['column']}: {entry['path']}: "
    assert first.startswith(prefix), first
    assert entry["message_contains"] in first[len(prefix) :]
    assert all(ISSUE.match(line) for line in out.splitlines()), out


SUBPROCESS_SAMPLE = [
    "tabs_indentation.yaml",
    "binary.bin",
    "latin1.yaml",
    "alias_bomb.yaml",
    "nested_too_deep.yaml",
    "unclosed_bracket.yaml",
    "rule_unknown_instance.yaml",
    "empty.yaml",
]


def test_subprocess_prints_issues_without_traceback() -> None:
    """`python -m routing.cli validate FILE...` prints located issues, exit 2, no traceback."""
    env = {k: v for k, v in os.environ.items() if k != UNSET}
    files = [str(BAD / name) for name in SUBPROCESS_SAMPLE]
    proc = subprocess.run(
        [sys.executable, "-m", "routing.cli", "validate", *files],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert all(ISSUE.match(line) for line in lines), proc.stdout
    for name, file in zip(SUBPROCESS_SAMPLE, files, strict=True):
        entry = EXPECTED[name]
        assert f"{file}:{entry['line']}:{entry['column']}: {entry['path']}: " in proc.stdout


def test_tab_message_is_helpful(capsys: pytest.CaptureFixture[str]) -> None:
    """A tab used for indentation is named as such and the fix (spaces) is given."""
    main(["validate", str(BAD / "tabs_indentation.yaml")])
    out = capsys.readouterr().out
    assert "tab character" in out
    assert "spaces" in out
    assert "'\\t'" not in out  # not the parser's jargon


def test_several_files_report_each(capsys: pytest.CaptureFixture[str]) -> None:
    """Validating a good and a bad file prints `ok` for one, issues for the other, exit 2."""
    good = Path(__file__).parents[2] / "configs" / "agentos.yaml"
    code = main(["validate", str(good), str(BAD / "port_zero.yaml")])
    out = capsys.readouterr().out.splitlines()
    assert code == 2
    assert out[0] == f"{good}: ok"
    assert out[1].startswith(f"{BAD / 'port_zero.yaml'}:6:23: ")
