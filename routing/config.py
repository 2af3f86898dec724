"""Config: YAML -> schema check -> meaning check -> frozen dataclasses.

:func:`load_config` is the only way in.  It reports every problem it finds as a
:class:`~routing.errors.ConfigIssue` (file, line, column, JSON path, message),
best first, inside one :class:`~routing.errors.ConfigError`; nothing downstream
of it ever sees a raw dict.

Loading is total: whatever the file holds (nothing, a FIFO, a device, binary,
a 5,000-digit number, NaN, a billion laughs), the answer is a :class:`Config`
or a :class:`ConfigError`; never another exception, never a hang.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal, cast

from routing._auth import AuthSettings, ClientKey, auth_issues, build_auth
from routing._config_file import MAX_CONFIG_BYTES, decode_config, read_config_bytes
from routing._schema_check import schema_issues
from routing._semantics import check_meaning, instance_url
from routing._urls import is_local
from routing._yaml import MarkedDocument, load_marked, shorten
from routing.adapters import get_adapter, known_kinds
from routing.errors import ConfigError, ConfigIssue

__all__ = [
    "MAX_CONFIG_BYTES",
    "ApiStyle",
    "AuthSettings",
    "BreakerSettings",
    "ClientKey",
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

#: An API style: a name in :data:`routing.adapters.ADAPTERS` (openai, ollama, anthropic, …).
ApiStyle = str
FallbackMode = Literal["none", "any-ready"]

logger = logging.getLogger("routing.config")


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
    strategy: str = "first"


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Settings of ``routing serve``."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 10 * 1024 * 1024
    #: Seconds a client has to send a request's headers and body.
    read_timeout: float = 30.0
    #: Most client connections open at once.
    max_connections: int = 1024
    #: Who may use the gateway (``gateway.auth``); None: everyone who can reach it.
    auth: AuthSettings | None = None


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
    #: ``provider:instance``, the name used everywhere (CLI, headers, traces).
    key: str = field(init=False, repr=False, compare=False)
    #: The base URL that API style's official client takes (``.../v1`` for openai).
    base_url: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived once: every request reads both several times.
        object.__setattr__(self, "key", f"{self.provider}:{self.name}")
        object.__setattr__(self, "base_url", self.url + get_adapter(self.api).url_suffix)

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
    """A match rule as written; :mod:`routing._rules` compiles it."""

    index: int
    name: str | None
    globs: tuple[str, ...]
    regexes: tuple[str, ...]
    exact: tuple[str, ...]
    route: tuple[str, ...]
    targets: tuple[str, ...]
    strategy: str | None = None

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
    text = decode_config(read_config_bytes(name), name)
    return parse_config(text, file=name, environ=environ)


def parse_config(
    text: str, *, file: str = "<string>", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate and build a config from YAML ``text``; ``file`` names it in errors."""
    try:
        return _parse(text, file, environ)
    except ConfigError:
        raise
    except Exception as exc:  # a bug of ours must still not be a traceback for the user
        logger.debug("unexpected error while checking %s", file, exc_info=True)
        raise ConfigError(
            [
                ConfigIssue(
                    file,
                    1,
                    1,
                    "$",
                    f"this config could not be checked ({type(exc).__name__}: "
                    f"{shorten(str(exc), 200)}); please report it to the routing project",
                )
            ]
        ) from exc


def _parse(text: str, file: str, environ: Mapping[str, str] | None) -> Config:
    env = dict(os.environ if environ is None else environ)
    doc = load_marked(text, file, env)
    issues = list(doc.issues)
    if doc.data is not None:
        # Keep going after duplicate keys and missing variables so that one run shows every
        # problem; only drop later complaints about a value made from a missing variable.
        later = schema_issues(doc)
        if not later:
            later = check_meaning(doc) + list(auth_issues(doc, env))
        for issue in later:
            if _under(issue.json_path, doc.reported):
                continue
            written = doc.interpolated.get(issue.json_path)
            if written is not None:  # say where a surprising value came from
                issue = replace(issue, message=f"{issue.message} (from {written})")
            issues.append(issue)
    if issues:
        raise ConfigError(issues)
    return _build(doc, env)


def _under(path: str, reported: set[str]) -> bool:
    return any(path == r or path.startswith((r + ".", r + "[")) for r in reported)


def _build(doc: MarkedDocument, env: Mapping[str, str]) -> Config:
    data = cast(dict[str, Any], doc.data)
    d = data.get("defaults", {})
    p = d.get("probe", {})
    # int() and float() below: the schema lets 8080.0 be an integer and 1 be seconds.
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
        strategy=str(d.get("strategy", "first")),
    )
    providers: dict[str, Provider] = {}
    instances: dict[str, Instance] = {}
    for pname, p in data["providers"].items():
        kind = p.get("kind") or (pname if pname in known_kinds() else "generic")
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
                strategy=r.get("strategy"),
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
        gateway=GatewaySettings(
            host=str(g.get("host", "127.0.0.1")),
            port=int(g.get("port", 8000)),
            max_body_bytes=int(g.get("max_body_bytes", 10 * 1024 * 1024)),
            read_timeout=float(g.get("read_timeout", 30.0)),
            max_connections=int(g.get("max_connections", 1024)),
            auth=build_auth(g.get("auth"), env),
        ),
        version=int(data["version"]),
    )


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)
