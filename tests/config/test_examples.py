"""Example configs validate, declare the schema, and the schema documents every key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from config_schema_walk import SCHEMA, properties

from routing.cli import main
from routing.config import parse_config
from routing.errors import ConfigError

ROOT = Path(__file__).parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def skip_if_not_a_config(config: Path) -> None:
    """Skip, visibly, a file in configs/ that is not a routing config (conformance cases)."""
    head = config.read_text("utf-8")
    if "\ncases:" in head and "\nproviders:" not in head.split("\ncases:")[0]:
        pytest.skip(
            f"{config.name} holds conformance cases, not a routing config; it belongs "
            "outside configs/"
        )


SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/routing.schema.json"


def test_at_least_two_examples() -> None:
    """configs/ holds the demo and agentos configs (and per-feature examples)."""
    names = {p.name for p in CONFIGS}
    assert {"demo.yaml", "agentos.yaml"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_example_validates(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`routing validate` prints `ok` for every file in configs/ and exits 0 (with the gateway
    keys it names set, as they must be: an unset one is an error)."""
    for name in re.findall(r"\b(?:admin_)?key_env: (\w+)", config.read_text("utf-8")):
        monkeypatch.setenv(name, f"example-key-{name.lower()}-0123456789")
    assert main(["validate", str(config)]) == 0
    assert capsys.readouterr().out == f"{config}: ok\n"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_example_declares_schema(config: Path) -> None:
    """Every example's first line points the YAML language server at the schema."""
    assert config.read_text("utf-8").splitlines()[0] == SCHEMA_LINE


def test_schema_walk_sees_everything() -> None:
    """The schema walker reaches the deep keys (so the description test means something)."""
    paths = {p for p, _ in properties(SCHEMA)}
    assert {
        "defaults.probe.ttl",
        "providers.<name>.instances.<name>.api_key_env",
        "rules[].match.model_regex",
        "gateway.max_body_bytes",
    } <= paths


@pytest.mark.parametrize("path", [p for p, _ in properties(SCHEMA)])
def test_every_property_has_a_description(path: str) -> None:
    """Every schema property (after following $ref) has a description for editors."""
    schema = dict(properties(SCHEMA))[path]
    assert schema.get("description", "").strip(), path


def test_schema_is_valid_draft_2020_12() -> None:
    """The schema itself is a valid draft 2020-12 schema."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


SEVERAL = """\
version: 1
defaults:
  request_timeout: -3
providers:
  ollama:
    api: olama
    instances:
      default: {port: 70000, prot: 1}
      default: {port: 11435}
rules:
  - match: {model: "llama*"}
    route: 5
fallback: any_ready
"""


def test_every_issue_reported_best_first() -> None:
    """A file with seven mistakes reports all seven: YAML first, then schema, shallow first."""
    with pytest.raises(ConfigError) as caught:
        parse_config(SEVERAL, file="several.yaml", environ={})
    got = [(i.line, i.column, i.json_path) for i in caught.value.issues]
    assert got == [
        (9, 7, "$.providers.ollama.instances.default"),  # duplicate key
        (13, 11, "$.fallback"),
        (3, 20, "$.defaults.request_timeout"),
        (12, 12, "$.rules[0].route"),
        (6, 10, "$.providers.ollama.api"),
        (8, 30, "$.providers.ollama.instances.default.prot"),
        (8, 23, "$.providers.ollama.instances.default.port"),
    ]


MEANING = """\
version: 1
providers:
  ollama:
    api: ollama
    instances:
      default: {port: 11434}
      again: {port: 11434}
rules:
  - route: olama
  - match: {model_regex: "(a+)+"}
    route: ollama:defualt
"""


def test_every_meaning_issue_reported_in_file_order() -> None:
    """Stage-2 problems (address, references, reachability, regex) are all reported, in order."""
    with pytest.raises(ConfigError) as caught:
        parse_config(MEANING, file="meaning.yaml", environ={})
    messages = [i.message.split(" (")[0].split(":")[0] for i in caught.value.issues]
    assert [i.line for i in caught.value.issues] == [7, 9, 10, 10, 11]
    assert messages == [
        "ollama",
        "route names unknown provider 'olama'",
        "this rule can never match",
        "regex risks catastrophic backtracking",
        "route names unknown instance 'ollama",
    ]


def test_missing_variable_is_reported_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing ${VAR} is one issue, not also an 'empty url' issue at the same place."""
    text = (
        "version: 1\nproviders:\n  ollama:\n    api: ollama\n    instances:\n"
        "      default: {url: '${ROUTING_TEST_NOPE}'}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})
    (issue,) = caught.value.issues
    assert issue.message.startswith("environment variable ROUTING_TEST_NOPE is not set")
