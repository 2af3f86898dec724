"""The good path: a valid config becomes frozen dataclasses with normalised addresses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from routing.config import Config, Instance, load_config, parse_config
from routing.errors import ConfigError

CONFIG = """\
version: 1
defaults:
  connect_timeout: 0.25
  probe: {timeout: 2, ttl: 10}
  breaker: {failures: 5}
providers:
  ollama:
    api: ollama
    instances:
      default: {url: "${OLLAMA_HOST:-http://127.0.0.1:11434}"}
  llamacpp:
    api: openai
    instances:
      qwen3-coder-30b: {port: 11435, request_timeout: 600}
      qwen25-coder-7b: {host: "${QWEN_HOST:-127.0.0.1}", port: "${QWEN_PORT:-11436}"}
  openai:
    api: openai
    instances:
      default:
        url: "https://api.openai.com/v1"
        api_key_env: ROUTING_TEST_OPENAI_KEY
        models: [gpt-4o, gpt-4o-mini]
        aliases: {fast: gpt-4o-mini}
rules:
  - name: openai models
    match: {model: "gpt-*"}
    route: openai
  - match: {model_regex: ["qwen.*", "\\\\d+b"], model_exact: coder}
    route: [llamacpp:qwen25-coder-7b, llamacpp]
  - route: ollama
fallback: any-ready
gateway: {port: 0}
"""


def _parse(**environ: str) -> Config:
    return parse_config(CONFIG, file="test.yaml", environ=environ)


def test_parses_into_frozen_dataclasses() -> None:
    """Providers, instances, rules and settings come out as frozen dataclasses, in order."""
    config = _parse()
    assert list(config.providers) == ["ollama", "llamacpp", "openai"]
    assert list(config.instances) == [
        "ollama:default",
        "llamacpp:qwen3-coder-30b",
        "llamacpp:qwen25-coder-7b",
        "openai:default",
    ]
    assert [i.key for i in config.providers["llamacpp"].instances] == [
        "llamacpp:qwen3-coder-30b",
        "llamacpp:qwen25-coder-7b",
    ]
    assert config.fallback == "any-ready"
    assert config.gateway.port == 0
    assert config.source == "test.yaml"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.fallback = "none"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.instances["x"] = config.instances["ollama:default"]  # type: ignore[index]


def test_defaults_and_overrides() -> None:
    """Unset settings take documented defaults; an instance's own timeout overrides them."""
    config = _parse()
    assert config.defaults.connect_timeout == 0.25
    assert config.defaults.request_timeout == 120.0
    assert (config.defaults.probe.timeout, config.defaults.probe.ttl) == (2.0, 10.0)
    assert isinstance(config.defaults.probe.timeout, float)
    assert config.defaults.breaker.failures == 5
    assert (config.defaults.breaker.backoff, config.defaults.breaker.max_backoff) == (1.0, 30.0)
    assert config.defaults.retries == 2
    big = config.instances["llamacpp:qwen3-coder-30b"]
    assert (big.request_timeout, big.connect_timeout, big.probe_timeout) == (600.0, 0.25, 2.0)


def test_urls_normalised() -> None:
    """url/host/port become one root URL; the openai style's base_url adds /v1."""
    config = _parse()
    ollama = config.instances["ollama:default"]
    assert (ollama.url, ollama.base_url, ollama.api, ollama.kind) == (
        "http://127.0.0.1:11434",
        "http://127.0.0.1:11434",
        "ollama",
        "ollama",
    )
    small = config.instances["llamacpp:qwen25-coder-7b"]
    assert (small.url, small.base_url) == ("http://127.0.0.1:11436", "http://127.0.0.1:11436/v1")
    assert small.kind == "llamacpp"
    remote = config.instances["openai:default"]
    assert (remote.url, remote.base_url) == ("https://api.openai.com", "https://api.openai.com/v1")
    assert remote.local is False and small.local is True


def test_ollama_host_bind_all_becomes_loopback() -> None:
    """OLLAMA_HOST=0.0.0.0 (where Ollama listens) is connected to as 127.0.0.1:11434."""
    assert _parse(OLLAMA_HOST="0.0.0.0").instances["ollama:default"].url == (
        "http://127.0.0.1:11434"
    )
    assert _parse(OLLAMA_HOST="gpu-box:11500").instances["ollama:default"].url == (
        "http://gpu-box:11500"
    )


def test_env_defaults_and_typed_port() -> None:
    """${VAR:-default} uses the default when unset or empty; a port from the env is an int."""
    unset = _parse().instances["llamacpp:qwen25-coder-7b"]
    assert unset.url == "http://127.0.0.1:11436"
    moved = _parse(QWEN_HOST="10.0.0.7", QWEN_PORT="9000").instances["llamacpp:qwen25-coder-7b"]
    assert moved.url == "http://10.0.0.7:9000"
    empty = _parse(QWEN_PORT="").instances["llamacpp:qwen25-coder-7b"]
    assert empty.url.endswith(":11436")


def test_env_port_must_be_a_number() -> None:
    """A port variable that is not a number is reported at the port, as a type error."""
    with pytest.raises(ConfigError) as caught:
        _parse(QWEN_PORT="nine")
    (issue,) = caught.value.issues
    assert issue.json_path == "$.providers.llamacpp.instances.qwen25-coder-7b.port"
    assert issue.message == ("expected an integer, got a string 'nine' (from ${QWEN_PORT:-11436})")
    assert issue.line == 15
    assert issue.column == CONFIG.splitlines()[14].index('"${QWEN_PORT') + 1


def test_rules_built() -> None:
    """Rules keep their globs, regexes, exact names, route and expanded targets in order."""
    first, second, last = _parse().rules
    assert (first.label, first.globs, first.targets) == (
        "openai models",
        ("gpt-*",),
        ("openai:default",),
    )
    assert second.regexes == ("qwen.*", "\\d+b") and second.exact == ("coder",)
    assert second.label == "rules[1]"
    assert second.targets == ("llamacpp:qwen25-coder-7b", "llamacpp:qwen3-coder-30b")
    assert not second.catch_all and last.catch_all
    assert last.targets == ("ollama:default",)


def test_instance_extras() -> None:
    """Static models and aliases are kept; the API key is read from the env only on demand."""
    remote: Instance = _parse().instances["openai:default"]
    assert remote.models == ("gpt-4o", "gpt-4o-mini")
    assert dict(remote.aliases) == {"fast": "gpt-4o-mini"}
    assert remote.api_key() is None or isinstance(remote.api_key(), str)
    assert "ROUTING_TEST_OPENAI_KEY" not in repr(remote.api_key())


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """api_key() reads the named variable each time; an empty one counts as unset."""
    remote = _parse().instances["openai:default"]
    monkeypatch.setenv("ROUTING_TEST_OPENAI_KEY", "sk-test")
    assert remote.api_key() == "sk-test"
    monkeypatch.setenv("ROUTING_TEST_OPENAI_KEY", "")
    assert remote.api_key() is None


def test_merge_keys_may_override(tmp_path: Path) -> None:
    """A key written next to `<<: *anchor` overrides the merged one (not a duplicate)."""
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "version: 1\n"
        "x-local: &local {host: 127.0.0.1, port: 1}\n"
        "providers:\n"
        "  llamacpp:\n"
        "    api: openai\n"
        "    instances:\n"
        "      a: {<<: *local, port: 11435}\n"
        "      b: {<<: *local, port: 11436}\n"
    )
    config = load_config(path, environ={})
    assert [i.url for i in config.instances.values()] == [
        "http://127.0.0.1:11435",
        "http://127.0.0.1:11436",
    ]


def test_two_accounts_of_one_remote_api() -> None:
    """Two instances at one address are allowed when each has its own API key variable."""
    text = (
        "version: 1\nproviders:\n  openai:\n    api: openai\n    instances:\n"
        "      work: {url: 'https://api.openai.com/v1', api_key_env: WORK_KEY}\n"
        "      home: {url: 'https://api.openai.com/v1', api_key_env: HOME_KEY}\n"
    )
    assert len(parse_config(text, environ={}).instances) == 2
