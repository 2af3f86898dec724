"""The hostile-config corpus: every input ends in `ok` or a located issue, exit 0 or 2.

Never a traceback, never a hang: each in-process run has a deadline, and a sample runs in a
subprocess (FIFO and /dev/zero included) whose stderr must stay empty.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from routing.cli import main
from routing.config import load_config
from routing.errors import ConfigError

HOSTILE = Path(__file__).parent / "hostile"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((HOSTILE / "expected.yaml").read_text("utf-8"))
ISSUE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<path>\$.*?): (?P<message>.+)$"
)
#: Longest one validation may take before it counts as a hang.
DEADLINE = 60.0


def make_unreadable(path: Path) -> None:
    """A file at ``path`` that cannot be read: mode 000, or (root reads those) a link to
    /proc/self/mem, a regular file whose first read fails with EIO."""
    if os.geteuid() == 0:
        path.symlink_to("/proc/self/mem")
    else:
        path.write_text("version: 1\n", encoding="utf-8")
        path.chmod(0)


def materialise(name: str, entry: dict[str, Any], tmp_path: Path) -> Path:
    """The file to validate: the committed one, a device, or one made in ``tmp_path``."""
    how = entry.get("generate")
    if how is None:
        return HOSTILE / name
    if how.startswith("/"):
        return Path(how)
    target = tmp_path / name
    if how == "fifo":
        os.mkfifo(target)
    elif how == "symlink_to_fifo":
        os.mkfifo(tmp_path / "pipe")
        target.symlink_to(tmp_path / "pipe")
    elif how == "directory":
        target.mkdir()
    elif how == "symlink_loop":
        target.symlink_to(tmp_path / "loop_b")
        (tmp_path / "loop_b").symlink_to(target)
    elif how == "dangling_symlink":
        target.symlink_to(tmp_path / "nowhere.yaml")
    elif how == "socket":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(target))
        listener.close()  # the socket file stays behind
    elif how == "unreadable":
        make_unreadable(target)
    elif how == "many_values":
        target.write_text("version: 1\nx-many: [" + "1," * 150_000 + "1]\n", encoding="utf-8")
    elif how == "long_line":
        target.write_text("a" * 200_000 + "\n", encoding="utf-8")
    elif how == "brackets":
        target.write_text("[" * 1_000_000, encoding="utf-8")
    else:
        raise AssertionError(f"unknown generate: {how}")
    return target


@pytest.fixture
def hostile_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No ROUTING_HOSTILE_* variable is set unless a case sets it."""
    for name in [n for n in os.environ if n.startswith("ROUTING_HOSTILE_")]:
        monkeypatch.delenv(name)
    yield monkeypatch


def set_env(monkeypatch: pytest.MonkeyPatch, entry: dict[str, Any]) -> None:
    """Set the case's variables (``[text, n]`` is ``text`` repeated ``n`` times)."""
    for name, value in (entry.get("env") or {}).items():
        monkeypatch.setenv(name, value[0] * value[1] if isinstance(value, list) else value)


def validate_bounded(path: Path) -> int:
    """`routing validate PATH` in-process, failing (not hanging) if it does not finish."""
    result: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(main(["validate", str(path)]))
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(DEADLINE)
    assert not worker.is_alive(), f"validate {path} did not finish within {DEADLINE} s"
    if errors:
        raise errors[0]
    return result[0]


def test_corpus_is_complete() -> None:
    """Every committed hostile file has an expectation; at least 60 cases, ok ones included."""
    files = {p.name for p in HOSTILE.iterdir() if p.name != "expected.yaml"}
    committed = {n for n, e in EXPECTED.items() if "generate" not in e}
    assert files == committed
    assert len(EXPECTED) >= 60
    assert {e["exit"] for e in EXPECTED.values()} == {0, 2}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_config(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], hostile_env: pytest.MonkeyPatch
) -> None:
    """`routing validate` ends in `ok` (0) or prints FILE:LINE:COL: PATH: message first (2)."""
    entry = EXPECTED[name]
    set_env(hostile_env, entry)
    path = materialise(name, entry, tmp_path)
    code = validate_bounded(path)
    out, err = capsys.readouterr()
    assert (code, err) == (entry["exit"], "")
    if "absent" in entry:
        assert entry["absent"] not in out
    if code == 0:
        assert out == f"{path}: ok\n"
        return
    first = out.splitlines()[0]
    prefix = f"{path}:{entry['line']}:{entry['column']}: {entry['path']}: "
    assert first.startswith(prefix), first
    assert entry["message_contains"] in first[len(prefix) :]
    assert all(ISSUE.match(line) for line in out.splitlines()), out


SUBPROCESS_SAMPLE = [
    "special_fifo.yaml",
    "special_dev_zero",
    "int_5000_digits.yaml",
    "timeout_nan.yaml",
    "doc_dashes.yaml",
    "doc_tilde.yaml",
    "text_lone_surrogate_rule_name.yaml",
    "env_nested_default.yaml",
    "url_credentials.yaml",
    "tag_python_object.yaml",
    "special_symlink_loop.yaml",
    "deep_flow_thousands.yaml",
    "key_boolean_on.yaml",
]


def test_subprocess_prints_issues_without_traceback(tmp_path: Path) -> None:
    """`python -m routing.cli validate` over the worst cases: exit 2, located lines, no
    traceback, nothing on stderr, and it returns (the FIFO does not block it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTING_HOSTILE_")}
    paths = [materialise(name, EXPECTED[name], tmp_path) for name in SUBPROCESS_SAMPLE]
    proc = subprocess.run(
        [sys.executable, "-m", "routing.cli", "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=env,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert all(ISSUE.match(line) for line in proc.stdout.splitlines()), proc.stdout
    for name, path in zip(SUBPROCESS_SAMPLE, paths, strict=True):
        entry = EXPECTED[name]
        assert f"{path}:{entry['line']}:{entry['column']}: {entry['path']}: " in proc.stdout


def test_subprocess_survives_a_c_locale(tmp_path: Path) -> None:
    """Under LC_ALL=C (ASCII stdout) issues quoting non-ASCII text print as escapes."""
    path = tmp_path / "accents.yaml"
    path.write_text("version: 1\nprovidérs: {}\n", encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run(
        [sys.executable, "-m", "routing.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=env,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (2, "")
    assert "provid\\xe9rs" in proc.stdout


def test_file_name_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file name with a byte that is not UTF-8 (a lone surrogate in Python) prints escaped,
    for `ok` and for issues alike."""
    good = tmp_path / os.fsdecode(b"good\xff.yaml")
    good.write_bytes((HOSTILE / "key_quoted_number_ok.yaml").read_bytes())
    bad = tmp_path / os.fsdecode(b"bad\xfe.yaml")
    bad.write_text("~\n", encoding="utf-8")
    code = main(["validate", str(good), str(bad)])
    out = capsys.readouterr().out.splitlines()
    assert code == 2
    assert out[0] == f"{tmp_path}/good\\udcff.yaml: ok"
    assert out[1].startswith(f"{tmp_path}/bad\\udcfe.yaml:1:1: $: the document is only '~'")


def test_explain_refuses_a_lone_surrogate_name(capsys: pytest.CaptureFixture[str]) -> None:
    """`routing explain` on a rule named "\\ud800" (which used to crash it): exit 2, located."""
    path = HOSTILE / "text_lone_surrogate_rule_name.yaml"
    code = main(["explain", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"{path}:8:11: $.rules[0].name: contains U+D800, a lone surrogate")


def test_explain_prints_a_backend_model_name_it_cannot_encode(
    fake_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backend serving a model named with a lone surrogate and an escape sequence: explain
    prints the decision with both escaped (it used to raise UnicodeEncodeError)."""
    fake = fake_server("llamacpp", ["\ud800odd\x1b[2J.gguf"])
    path = tmp_path / "explain.yaml"
    path.write_text(
        "version: 1\nproviders:\n  llamacpp:\n    api: openai\n    instances:\n"
        f"      a: {{port: {fake.port}}}\n",
        encoding="utf-8",
    )
    code = main(["explain", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "\\ud800odd\\x1b[2J.gguf" in out
    assert "\x1b" not in out


def test_loaded_config_has_only_plain_finite_values() -> None:
    """The ok cases load into a Config; joined surrogate pairs become one character."""
    config = load_config(HOSTILE / "text_surrogate_pair_ok.yaml")
    assert config.rules[0].name == "\U0001f680 fast lane"
    gateway = load_config(HOSTILE / "gateway_settings_ok.yaml").gateway
    assert (gateway.read_timeout, gateway.max_connections) == (12.5, 64)
    shared = load_config(HOSTILE / "anchors_reused_ok.yaml")
    assert [(i.url, i.request_timeout) for i in shared.instances.values()] == [
        ("http://127.0.0.1:11434", 30.0),
        ("http://127.0.0.1:11435", 30.0),
    ]


def test_gateway_defaults() -> None:
    """Without a gateway section: read_timeout 30 s, max_connections 1024."""
    gateway = load_config(HOSTILE / "key_quoted_number_ok.yaml").gateway
    assert (gateway.read_timeout, gateway.max_connections) == (30.0, 1024)


def test_unexpected_failure_is_still_a_located_issue(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug of ours while checking (here: the schema stage raising) is a located
    ConfigError naming the exception, not a traceback."""
    import routing.config

    def broken(doc: object) -> list[object]:
        raise RuntimeError("schema stage broke")

    monkeypatch.setattr(routing.config, "schema_issues", broken)
    with pytest.raises(ConfigError) as caught:
        load_config(HOSTILE / "key_quoted_number_ok.yaml")
    issue = caught.value.issues[0]
    assert (issue.line, issue.column, issue.json_path) == (1, 1, "$")
    assert "RuntimeError: schema stage broke" in issue.message
