"""`gateway.auth` in the config: built from the environment, every problem a located
ConfigError (unset or weak keys, names or keys used twice), secrets out of every repr; and
`routing serve` refusing a non-loopback bind without auth."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing._auth import is_loopback
from routing.cli import main
from routing.config import parse_config
from routing.errors import ConfigError

ROOT = Path(__file__).parents[2]
BASE = """version: 1
providers:
  llamacpp:
    api: openai
    instances:
      a: {port: 11435}
"""
GOOD = "k" * 20


def _auth(body: str) -> str:
    return BASE + "gateway:\n  auth:\n" + body


def _issues(text: str, environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file="c.yaml", environ=environ)
    return [str(issue) for issue in caught.value.issues]


def test_keys_are_built_from_the_environment() -> None:
    """Names, globs and limits as written; each key read from its variable."""
    config = parse_config(
        _auth(
            "    keys:\n"
            "      - {name: alice, key_env: KA, models: ['qwen*'], requests_per_minute: 60,"
            " max_concurrent: 2}\n"
            "      - {name: bob, key_env: KB}\n"
            "    admin_key_env: KADMIN\n"
        ),
        environ={"KA": "a" * 16, "KB": "b" * 40, "KADMIN": "c" * 16},
    )
    auth = config.gateway.auth
    assert auth is not None
    alice, bob = auth.keys
    assert (
        alice.name,
        alice.secret,
        alice.models,
        alice.requests_per_minute,
        alice.max_concurrent,
    ) == ("alice", "a" * 16, ("qwen*",), 60, 2)
    assert (bob.models, bob.requests_per_minute, bob.max_concurrent) == ((), None, None)
    assert auth.admin_secret == "c" * 16
    assert alice.allows("qwen-7b") and not alice.allows("llama3") and not alice.allows(None)
    assert bob.allows("anything") and bob.allows(None)
    for text in (repr(config), repr(auth), str(auth)):
        assert "a" * 16 not in text and "b" * 40 not in text and "c" * 16 not in text


def test_no_auth_section_means_none() -> None:
    """Without gateway.auth there is no auth (every door open, as before)."""
    assert parse_config(BASE).gateway.auth is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "environment variable KA is not set (or empty); put the key in it"),
        ("", "environment variable KA is not set (or empty)"),
        ("short", "the key in KA has 5 characters; use at least 16"),
        ("has a space in it, sadly", "the key in KA must be printable ASCII without spaces"),
        ("clé-non-ascii-0123456789", "the key in KA must be printable ASCII"),
    ],
)
def test_bad_key_variable_is_located(value: str | None, says: str) -> None:
    """An unset, empty, short or unprintable key is a located issue naming its variable only."""
    environ = {} if value is None else {"KA": value}
    issues = _issues(_auth("    keys:\n      - {name: alice, key_env: KA}\n"), environ)
    assert len(issues) == 1
    assert issues[0].startswith("c.yaml:10:32: $.gateway.auth.keys[0].key_env: " + says)
    if value:
        assert value not in issues[0]


def test_names_and_keys_used_twice_and_admin_equal_to_a_client() -> None:
    """A name twice, one key for two holders, the admin key equal to a client's: each located."""
    issues = _issues(
        _auth(
            "    keys:\n"
            "      - {name: alice, key_env: KA}\n"
            "      - {name: alice, key_env: KB}\n"
            "      - {name: carol, key_env: KC}\n"
            "    admin_key_env: KADMIN\n"
        ),
        {"KA": GOOD, "KB": "b" * 16, "KC": GOOD, "KADMIN": "b" * 16},
    )
    assert issues == [
        "c.yaml:11:16: $.gateway.auth.keys[1].name: key name 'alice' is already used by "
        "gateway.auth.keys[0]; names tell keys apart in logs and metrics",
        "c.yaml:12:32: $.gateway.auth.keys[2].key_env: 'carol' has the same key as 'alice' "
        "(KC); every holder needs a key of their own",
        "c.yaml:13:20: $.gateway.auth.admin_key_env: the admin key (KADMIN) is also the key "
        "of 'alice'; the admin key must be its own",
    ]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ("    keys: []\n", "$.gateway.auth.keys"),
        ("    admin_key_env: KADMIN\n", "$.gateway.auth"),
        ("    keys:\n      - {name: alice}\n", "$.gateway.auth.keys[0]"),
        ("    keys:\n      - {name: alice, key_env: KA, key: secret}\n", "$.gateway.auth.keys[0]"),
        (
            "    keys:\n      - {name: alice, key_env: KA, models: []}\n",
            "$.gateway.auth.keys[0].models",
        ),
        (
            "    keys:\n      - {name: alice, key_env: KA, requests_per_minute: 0}\n",
            "$.gateway.auth.keys[0].requests_per_minute",
        ),
        ("    keys:\n      - {name: 'a b', key_env: KA}\n", "$.gateway.auth.keys[0].name"),
        (
            "    keys:\n      - {name: alice, key_env: 'not a name'}\n",
            "$.gateway.auth.keys[0].key_env",
        ),
    ],
)
def test_schema_refuses_bad_shapes(body: str, path: str) -> None:
    """Bad shapes of gateway.auth are refused by the schema, located at the offending path."""
    issues = _issues(_auth(body), {"KA": GOOD, "KADMIN": "z" * 16})
    assert any(f": {path}: " in issue or f": {path}." in issue for issue in issues), issues


def test_example_config_validates_with_its_keys_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """configs/auth.yaml is ok once its variables are set, and names the unset one without."""
    example = ROOT / "configs" / "auth.yaml"
    for name in ("ROUTING_KEY_ALICE", "ROUTING_KEY_CI", "ROUTING_ADMIN_KEY"):
        monkeypatch.setenv(name, f"example-{name.lower()}-0123456789")
    assert main(["validate", str(example)]) == 0
    assert capsys.readouterr().out == f"{example}: ok\n"
    monkeypatch.delenv("ROUTING_KEY_CI")
    assert main(["validate", str(example)]) == 2
    assert "environment variable ROUTING_KEY_CI is not set" in capsys.readouterr().out


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "gpu-box.lan"])
def test_serve_refuses_an_open_bind_without_auth(
    tmp_path: Path, host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`routing serve` off loopback without gateway.auth: exit 2, one line saying how to fix it."""
    config = tmp_path / "open.yaml"
    config.write_text(BASE, encoding="utf-8")
    assert main(["serve", str(config), "--host", host]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: refusing to serve {host} ")
    assert "gateway.auth" in err and "--allow-unauthenticated" in err
    config.write_text(BASE + f"gateway: {{host: '{host}'}}\n", encoding="utf-8")
    assert main(["serve", str(config)]) == 2


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    """Only addresses this machine alone can reach count as loopback."""
    assert is_loopback(host) is loopback
