"""Conformance cases: YAML files loaded and checked into frozen dataclasses.

A case file holds one case (a mapping) or several (``cases: [...]``)::

    name: second-model-goes-to-second-instance
    area: model-routing          # cases are counted by area
    bug: 4                       # optional: the field bug it reproduces
    env: {OPENAI_API_KEY: sk-x}  # optional: environment while the case runs
    fleet:                       # fakes to start, or url: for a backend already running
      - {name: a, kind: llamacpp, models: [qwen3-coder-30b.gguf]}
      - {name: b, kind: llamacpp, models: [qwen2.5-coder-7b.gguf], state: loading}
      - {name: c, kind: llamacpp, models: [x.gguf], chat_fault: hang}
    config: |                    # ${PORT_a} / ${URL_a} name the members' ports and URLs
      version: 1
      providers: ...
    request: {model: qwen2.5-coder-7b.gguf, provider: null, stream: false}
    expect:
      instance: llamacpp:b       # the instance that answered (or error: NoRouteError)
      answered_by: b             # the member whose self-identifying reply came back
      failovers: 0
    real: [a, b]                 # members that may be real llama.cpp (--backends real)

``fault`` is set before the first probe; ``chat_fault`` after a first ``resolve`` has
probed every candidate, so the chat request (not the probe) meets it. ``state`` is
``up`` (default), ``down`` (started to get a port, then stopped) or ``loading``.
A fake's model states: ``router_mode: true`` (llama.cpp router mode, every model listed
with its status) with ``loaded: [...]`` (default none); ``loaded:`` alone sets an Ollama's
``/api/ps``; ``busy: N`` makes a llama.cpp fake report N of its 4 slots processing.
``expect.loads: {member: N}``: the model loads the request caused on that fake.
``request.door`` (default ``openai``) is where the request comes in, on both paths
(:mod:`routing.conformance.doors`); ``embeddings: true`` starts a llama.cpp fake as
``--embeddings``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fake_servers import KINDS, parse_fault

__all__ = [
    "Case",
    "CaseError",
    "Expect",
    "Member",
    "Request",
    "find_cases",
    "load_cases",
    "schema_problems",
]

STATES = ("up", "down", "loading")
ERRORS = (
    "RoutingError",
    "NoRouteError",
    "BackendError",
    "BackendUnavailable",
    "BackendTimeout",
    "BackendProtocolError",
    "BackendRejected",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CASE_KEYS = {
    "name",
    "area",
    "bug",
    "description",
    "env",
    "fleet",
    "config",
    "request",
    "expect",
    "real",
}
_MEMBER_KEYS = {
    "name",
    "kind",
    "url",
    "models",
    "fault",
    "chat_fault",
    "state",
    "api_key",
    "router_mode",
    "loaded",
    "busy",
    "embeddings",
}
_REQUEST_KEYS = {"model", "provider", "stream", "max_tokens", "door"}
_DOORS = (
    "openai",
    "openai-completions",
    "openai-embeddings",
    "anthropic",
    "ollama",
    "ollama-generate",
    "ollama-embed",
)
_EXPECT_KEYS = {
    "instance",
    "model",
    "answered_by",
    "failovers",
    "fallback_used",
    "error",
    "http_status",
    "candidates",
    "warning",
    "stream_broken",
    "probed",
    "no_auth",
    "within",
    "loads",
}


class CaseError(ValueError):
    """A case file is malformed; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Member:
    """One backend of a case's fleet: a fake of ``kind``, or a running server at ``url``."""

    name: str
    kind: str | None = None
    url: str | None = None
    models: tuple[str, ...] = ()
    fault: str = "none"
    chat_fault: str | None = None
    state: str = "up"
    api_key: str | None = None
    router_mode: bool = False
    loaded: tuple[str, ...] | None = None
    busy: int = 0
    embeddings: bool = False

    @property
    def fake(self) -> bool:
        """True when the driver starts a fake for this member (no ``url:``)."""
        return self.url is None


@dataclass(frozen=True, slots=True)
class Request:
    """What the case asks: ``model`` and ``provider`` may be None; ``stream`` or not;
    ``door``: where it comes in (:mod:`routing.conformance.doors`; default ``openai``)."""

    model: str | None = None
    provider: str | None = None
    stream: bool = False
    max_tokens: int = 4
    door: str = "openai"


@dataclass(frozen=True, slots=True)
class Expect:
    """The expected outcome; a field left None is not checked.

    ``instance``: ``provider:instance`` that answered. ``model``: the model id sent to it.
    ``answered_by``: the fleet member whose reply came back. ``failovers``: instances that
    failed first. ``error``: the exception class name (library) with ``http_status`` for
    the gateway. ``candidates``: ``{instance: state}`` in the trace or the NoRouteError.
    ``warning``: the reply named another model. ``stream_broken``: the stream started, then
    failed (never retried). ``probed``: ``{member: [paths]}`` the member must have been
    asked. ``no_auth``: members that must never see an API key. ``within``: seconds bound.
    ``loads``: ``{member: N}`` model loads the fake counted (llama.cpp router mode, Ollama).
    """

    instance: str | None = None
    model: str | None = None
    answered_by: str | None = None
    failovers: int | None = None
    fallback_used: bool | None = None
    error: str | None = None
    http_status: int | None = None
    candidates: Mapping[str, str] = field(default_factory=dict)
    warning: bool | None = None
    stream_broken: bool | None = None
    probed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    no_auth: tuple[str, ...] = ()
    within: float | None = None
    loads: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Case:
    """One conformance case: a fleet, a routing config, a request and what must happen."""

    name: str
    area: str
    fleet: tuple[Member, ...]
    config: str
    request: Request
    expect: Expect
    bug: int | None = None
    description: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    real: tuple[str, ...] = ()
    source: str = ""

    def member(self, name: str) -> Member:
        """The fleet member called ``name`` (KeyError if none)."""
        for m in self.fleet:
            if m.name == name:
                return m
        raise KeyError(name)


def _fail(where: str, message: str) -> CaseError:
    return CaseError(f"{where}: {message}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, f"expected a mapping, got {type(value).__name__}")
    return value


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(where, f"unknown keys {unknown}; allowed: {sorted(allowed)}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, "expected a string or a list of strings")
    return tuple(value)


def _member(data: Any, where: str) -> Member:
    data = _mapping(data, where)
    _check_keys(data, _MEMBER_KEYS, where)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(where, f"name: expected a plain name, got {name!r}")
    kind, url = data.get("kind"), data.get("url")
    if (kind is None) == (url is None):
        raise _fail(where, "give exactly one of kind: (a fake) or url: (a running backend)")
    if kind is not None and kind not in KINDS:
        raise _fail(where, f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    state = str(data.get("state", "up"))
    if state not in STATES:
        raise _fail(where, f"state: {state!r} is not one of {', '.join(STATES)}")
    fault = str(data.get("fault") or "none")
    chat_fault = data.get("chat_fault")
    try:
        parse_fault(fault)
        if chat_fault is not None:
            parse_fault(str(chat_fault))
    except ValueError as exc:
        raise _fail(where, str(exc)) from exc
    if url is not None and (fault != "none" or chat_fault is not None or state != "up"):
        raise _fail(where, "a url: member is a running backend: no fault, chat_fault or state")
    router_mode, busy = data.get("router_mode", False), data.get("busy", 0)
    loaded = None if data.get("loaded") is None else _strings(data["loaded"], f"{where}.loaded")
    if router_mode is not False and (router_mode is not True or kind != "llamacpp"):
        raise _fail(where, "router_mode: true is for a llamacpp fake")
    if loaded is not None and not (router_mode or kind == "ollama"):
        raise _fail(where, "loaded: needs router_mode: true (llamacpp) or an ollama fake")
    if busy != 0 and (
        isinstance(busy, bool) or not isinstance(busy, int) or busy < 0 or kind != "llamacpp"
    ):
        raise _fail(where, "busy: a whole number >= 0, for a llamacpp fake")
    embeddings = data.get("embeddings", False)
    if embeddings is not False and (embeddings is not True or kind != "llamacpp"):
        raise _fail(where, "embeddings: true is for a llamacpp fake (started --embeddings)")
    return Member(
        name=name,
        kind=kind,
        url=None if url is None else str(url).rstrip("/"),
        models=_strings(data.get("models"), f"{where}.models"),
        fault=fault,
        chat_fault=None if chat_fault is None else str(chat_fault),
        state=state,
        api_key=None if data.get("api_key") is None else str(data["api_key"]),
        router_mode=router_mode,
        loaded=loaded,
        busy=busy,
        embeddings=embeddings,
    )


def _request(data: Any, where: str) -> Request:
    data = _mapping(data, where)
    _check_keys(data, _REQUEST_KEYS, where)
    for key in ("model", "provider"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise _fail(where, f"{key}: expected a string or null")
    door = str(data.get("door", "openai"))
    if door not in _DOORS:
        raise _fail(where, f"door: {door!r} is not one of {', '.join(_DOORS)}")
    return Request(
        model=data.get("model"),
        provider=data.get("provider"),
        stream=bool(data.get("stream", False)),
        max_tokens=int(data.get("max_tokens", 4)),
        door=door,
    )


def _expect(data: Any, where: str, members: set[str]) -> Expect:
    data = _mapping(data, where)
    _check_keys(data, _EXPECT_KEYS, where)
    error = data.get("error")
    if error is not None and error not in ERRORS:
        raise _fail(where, f"error: {error!r} is not one of {', '.join(ERRORS)}")
    if error is None and data.get("instance") is None:
        raise _fail(where, "give instance: (who answers) or error: (what is raised)")
    probed = {
        str(k): _strings(v, f"{where}.probed.{k}")
        for k, v in _mapping(data.get("probed"), f"{where}.probed").items()
    }
    no_auth = _strings(data.get("no_auth"), f"{where}.no_auth")
    loads = {str(k): v for k, v in _mapping(data.get("loads"), f"{where}.loads").items()}
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in loads.values()):
        raise _fail(where, "loads: expected {member: a whole number}")
    named = {data.get("answered_by"), *probed, *no_auth, *loads} - {None}
    if named - members:
        raise _fail(where, f"names members not in the fleet: {sorted(named - members)}")
    candidates = {
        str(k): str(v).upper()
        for k, v in _mapping(data.get("candidates"), f"{where}.candidates").items()
    }
    return Expect(
        instance=data.get("instance"),
        model=data.get("model"),
        answered_by=data.get("answered_by"),
        failovers=data.get("failovers"),
        fallback_used=data.get("fallback_used"),
        error=error,
        http_status=data.get("http_status"),
        candidates=candidates,
        warning=data.get("warning"),
        stream_broken=data.get("stream_broken"),
        probed=probed,
        no_auth=no_auth,
        within=None if data.get("within") is None else float(data["within"]),
        loads=loads,
    )


def parse_case(data: Any, source: str = "<case>") -> Case:
    """Check one case mapping and build its :class:`Case` (raises :class:`CaseError`)."""
    data = _mapping(data, source)
    _check_keys(data, _CASE_KEYS, source)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(source, f"name: expected a plain name, got {name!r}")
    where = f"{source}: {name}"
    for key in ("area", "fleet", "config", "request", "expect"):
        if key not in data:
            raise _fail(where, f"{key}: is required")
    fleet_data = data["fleet"]
    if not isinstance(fleet_data, list) or not fleet_data:
        raise _fail(where, "fleet: expected a non-empty list")
    fleet = tuple(_member(m, f"{where}.fleet[{i}]") for i, m in enumerate(fleet_data))
    names = [m.name for m in fleet]
    if len(set(names)) != len(names):
        raise _fail(where, f"fleet: duplicate member names in {names}")
    if not isinstance(data["config"], str):
        raise _fail(where, "config: expected the routing config as a YAML text block")
    real = _strings(data.get("real"), f"{where}.real")
    for member_name in real:
        if member_name not in names or fleet[names.index(member_name)].kind != "llamacpp":
            raise _fail(where, f"real: {member_name!r} is not a llamacpp member of the fleet")
    env = {str(k): str(v) for k, v in _mapping(data.get("env"), f"{where}.env").items()}
    bug = data.get("bug")
    if bug is not None and not isinstance(bug, int):
        raise _fail(where, "bug: expected an issue number")
    return Case(
        name=name,
        area=str(data["area"]),
        fleet=fleet,
        config=data["config"],
        request=_request(data["request"], f"{where}.request"),
        expect=_expect(data["expect"], f"{where}.expect", set(names)),
        bug=bug,
        description=str(data.get("description", "")),
        env=env,
        real=real,
        source=source,
    )


@cache
def _case_validator() -> Any:
    from jsonschema import Draft202012Validator

    text = resources.files("routing.conformance").joinpath("case.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def schema_problems(document: Any) -> list[str]:
    """What the case-file JSON Schema (``case.schema.json``) finds wrong, best first."""
    from jsonschema.exceptions import best_match

    errors = list(_case_validator().iter_errors(document))
    if not errors:
        return []
    best = best_match(errors)
    deepest = best.context and min(best.context, key=lambda e: -len(e.absolute_path))
    shown = deepest or best
    return [f"{shown.json_path}: {shown.message}"]


def load_case_file(path: Path) -> list[Case]:
    """The cases of one YAML file: a case mapping, or ``cases:`` with a list of them.

    The file is checked against ``case.schema.json`` first (as configs are against theirs),
    then each case's meaning (faults, member names) by :func:`parse_case`.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CaseError(f"{path}: {exc}") from exc
    problems = schema_problems(document)
    if problems:
        raise CaseError(f"{path}: {problems[0]}")
    if isinstance(document, dict) and set(document) == {"cases"}:
        items = document["cases"]
        if not isinstance(items, list):
            raise CaseError(f"{path}: cases: expected a list")
        return [parse_case(item, f"{path}[{i}]") for i, item in enumerate(items)]
    return [parse_case(document, str(path))]


def find_cases(location: Path) -> list[Path]:
    """``location`` itself if a file, else its ``*.yaml`` / ``*.yml`` files, sorted."""
    if location.is_file():
        return [location]
    if not location.is_dir():
        raise CaseError(f"{location}: no such case file or directory")
    return sorted(p for p in location.iterdir() if p.suffix in (".yaml", ".yml"))


def load_cases(location: Path | str, pattern: str | None = None) -> list[Case]:
    """Every case under ``location`` (file or directory) whose name contains ``pattern``.

    Case names must be unique; :class:`CaseError` names the first bad file.
    """
    cases: list[Case] = []
    for path in find_cases(Path(location)):
        cases.extend(load_case_file(path))
    _unique(cases)
    if pattern:
        cases = [c for c in cases if _matches(c, pattern)]
    return cases


def _matches(case: Case, pattern: str) -> bool:
    words = (case.name, case.area, f"bug{case.bug}" if case.bug else "")
    return any(pattern.lower() in w.lower() for w in words)


def _unique(cases: Iterable[Case]) -> None:
    seen: dict[str, str] = {}
    for case in cases:
        if case.name in seen:
            raise CaseError(
                f"{case.source}: case name {case.name!r} also used in {seen[case.name]}"
            )
        seen[case.name] = case.source
