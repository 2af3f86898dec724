"""Config: YAML -> schema check -> meaning check -> frozen dataclasses.

:func:`load_config` is the only way in.  It reports every problem it finds as a
:class:`~routing.errors.ConfigIssue` (file, line, column, JSON path, message),
best first, inside one :class:`~routing.errors.ConfigError`; nothing downstream
of it ever sees a raw dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from types import MappingProxyType
from typing import Any, Literal, cast

from routing._schema_check import schema_issues
from routing._semantics import check_meaning, instance_url
from routing._urls import is_local
from routing._yaml import MarkedDocument, load_marked
from routing.errors import ConfigError, ConfigIssue

__all__ = [
    "MAX_CONFIG_BYTES",
    "ApiStyle",
    "BreakerSettings",
    "Config",
    "Defaults",
    "GatewaySettings",
    "Instance",
    "ProbeSettings",
    "Provider",
    "Rule",
    "load_config",
    "parse_config",
]

ApiStyle = Literal["openai", "ollama", "anthropic"]
FallbackMode = Literal["none", "any-ready"]

#: Larger config files are refused before parsing (a config is a few KB).
MAX_CONFIG_BYTES = 1024 * 1024

_KNOWN_KINDS = ("llamacpp", "lmstudio", "openai", "ollama", "anthropic")


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """How probes run: ``timeout`` bounds one whole fan-out, ``ttl`` keeps results fresh."""

    timeout: float = 1.0
    ttl: float = 5.0


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Circuit breaker: opens after ``failures`` in a row for ``backoff`` s, doubling up to
    ``max_backoff``."""

    failures: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0


@dataclass(frozen=True, slots=True)
class Defaults:
    """Settings every instance inherits."""

    connect_timeout: float = 0.5
    request_timeout: float = 120.0
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    retries: int = 2


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Settings of ``routing serve``."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 10 * 1024 * 1024
    read_timeout: float = 30.0
    max_connections: int = 1024


@dataclass(frozen=True, slots=True)
class Instance:
    """One server of a provider, addressed as ``provider:name``."""

    provider: str
    name: str
    api: ApiStyle
    kind: str
    url: str
    api_key_env: str | None = None
    models: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    connect_timeout: float = 0.5
    request_timeout: float = 120.0
    probe_timeout: float = 1.0

    @property
    def key(self) -> str:
        """``provider:instance``, the name used everywhere (CLI, headers, traces)."""
        return f"{self.provider}:{self.name}"

    @property
    def base_url(self) -> str:
        """The base URL that API style's official client takes (``.../v1`` for openai)."""
        return self.url + "/v1" if self.api == "openai" else self.url

    @property
    def local(self) -> bool:
        """True when the server is on this machine or a private network."""
        return is_local(self.url)

    def api_key(self) -> str | None:
        """The API key from the environment, or None; never stored, never logged."""
        if self.api_key_env is None:
            return None
        return os.environ.get(self.api_key_env) or None


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider: an API style and its instances in declaration order."""

    name: str
    api: ApiStyle
    kind: str
    instances: tuple[Instance, ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """A match rule as written; :mod:`routing.rules` compiles it."""

    index: int
    name: str | None
    globs: tuple[str, ...]
    regexes: tuple[str, ...]
    exact: tuple[str, ...]
    route: tuple[str, ...]
    targets: tuple[str, ...]

    @property
    def catch_all(self) -> bool:
        """True when the rule has no match condition."""
        return not (self.globs or self.regexes or self.exact)

    @property
    def label(self) -> str:
        """How traces name the rule."""
        return self.name or f"rules[{self.index}]"


@dataclass(frozen=True, slots=True)
class Config:
    """A whole validated config."""

    source: str
    defaults: Defaults
    providers: Mapping[str, Provider]
    instances: Mapping[str, Instance]
    rules: tuple[Rule, ...]
    fallback: FallbackMode = "none"
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    version: int = 1


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read, validate and build the config at ``path``; raise :class:`ConfigError` if invalid."""
    name = os.fspath(path)
    text = _read_text(name)
    return parse_config(text, file=name, environ=environ)


def parse_config(
    text: str, *, file: str = "<string>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate and build a config from YAML ``text``; ``file`` names it in errors."""
    doc = load_marked(text, file, dict(os.environ if environ is None else environ))
    issues = list(doc.issues)
    if doc.data is not None:
        # Keep going after duplicate keys and missing variables so that one run shows every
        # problem; only drop later complaints about a value made from a missing variable.
        later = schema_issues(doc)
        if not later:
            later = check_meaning(doc)
        for issue in later:
            if _under(issue.json_path, doc.unset):
                continue
            written = doc.interpolated.get(issue.json_path)
            if written is not None:  # say where a surprising value came from
                issue = replace(issue, message=f"{issue.message} (from {written})")
            issues.append(issue)
    if issues:
        raise ConfigError(issues)
    return _build(doc)


def _under(path: str, reported: set[str]) -> bool:
    return any(path == r or path.startswith((r + ".", r + "[")) for r in reported)


def _read_text(name: str) -> str:
    def fail(message: str, line: int = 1, column: int = 1) -> ConfigError:
        return ConfigError([ConfigIssue(name, line, column, "$", message)])

    try:
        if FsPath(name).is_dir():
            raise fail("is a directory, not a config file")
        with open(name, "rb") as stream:
            # Read one byte past the limit: a device or pipe has no size to ask for first.
            size = os.fstat(stream.fileno()).st_size
            raw = b"" if size > MAX_CONFIG_BYTES else stream.read(MAX_CONFIG_BYTES + 1)
        if size > MAX_CONFIG_BYTES or len(raw) > MAX_CONFIG_BYTES:
            shown = f"{size:,} bytes" if size > MAX_CONFIG_BYTES else "more bytes"
            raise fail(f"file is too large ({shown}; a config may be at most "
                       f"{MAX_CONFIG_BYTES:,})")
    except ConfigError:
        raise
    except OSError as exc:
        raise fail(f"cannot read file: {exc.strerror or exc}") from exc
    if b"\x00" in raw:
        at = raw.index(b"\x00")
        line = raw.count(b"\n", 0, at) + 1
        raise fail("not a text file (NUL byte found); a config is UTF-8 YAML", line,
                   at - (raw.rfind(b"\n", 0, at) + 1) + 1)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise fail(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); a config is UTF-8 YAML",
                   line, col) from exc


def _build(doc: MarkedDocument) -> Config:
    data = cast(dict[str, Any], doc.data)
    d = data.get("defaults", {})
    p = d.get("probe", {})
    probe = ProbeSettings(timeout=float(p.get("timeout", 1.0)), ttl=float(p.get("ttl", 5.0)))
    b = d.get("breaker", {})
    breaker = BreakerSettings(
        failures=int(b.get("failures", 3)),
        backoff=float(b.get("backoff", 1.0)),
        max_backoff=float(b.get("max_backoff", 30.0)),
    )
    defaults = Defaults(
        connect_timeout=float(d.get("connect_timeout", 0.5)),
        request_timeout=float(d.get("request_timeout", 120.0)),
        probe=probe,
        breaker=breaker,
        retries=int(d.get("retries", 2)),
    )
    providers: dict[str, Provider] = {}
    instances: dict[str, Instance] = {}
    for pname, p in data["providers"].items():
        kind = p.get("kind") or (pname if pname in _KNOWN_KINDS else "generic")
        built = []
        for iname, i in p["instances"].items():
            inst = Instance(
                provider=pname,
                name=iname,
                api=p["api"],
                kind=kind,
                url=instance_url(i, api=p["api"], kind=kind),
                api_key_env=i.get("api_key_env"),
                models=tuple(i.get("models", ())),
                aliases=MappingProxyType(dict(i.get("aliases", {}))),
                connect_timeout=float(i.get("connect_timeout", defaults.connect_timeout)),
                request_timeout=float(i.get("request_timeout", defaults.request_timeout)),
                probe_timeout=float(i.get("probe_timeout", probe.timeout)),
            )
            built.append(inst)
            instances[inst.key] = inst
        providers[pname] = Provider(pname, p["api"], kind, tuple(built))
    rules = []
    for index, r in enumerate(data.get("rules", [])):
        match = r.get("match", {})
        route = _as_tuple(r["route"])
        targets: list[str] = []
        for target in route:
            keys = [target] if ":" in target else [i.key for i in providers[target].instances]
            targets.extend(k for k in keys if k not in targets)
        rules.append(
            Rule(
                index=index,
                name=r.get("name"),
                globs=_as_tuple(match.get("model")),
                regexes=_as_tuple(match.get("model_regex")),
                exact=_as_tuple(match.get("model_exact")),
                route=route,
                targets=tuple(targets),
            )
        )
    g = data.get("gateway", {})
    return Config(
        source=doc.file,
        defaults=defaults,
        providers=MappingProxyType(providers),
        instances=MappingProxyType(instances),
        rules=tuple(rules),
        fallback=data.get("fallback", "none"),
        gateway=GatewaySettings(**g),
        version=data["version"],
    )


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)
