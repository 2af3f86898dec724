"""Run one conformance case: start its fleet, send its request, compare with ``expect``.

Each path (``library``: :class:`routing._engine.Router`; ``gateway``: the aiohttp app of
:mod:`routing._gateway` on port 0) gets a fresh fleet, so no state leaks between them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from fake_servers import FakeServer, Fleet
from routing._engine import Router
from routing._operations import Operation
from routing.config import ProbeSettings, parse_config
from routing.conformance.cases import Case, CaseError, Member
from routing.conformance.doors import library_request, take
from routing.conformance.doors import reply_text as door_text
from routing.conformance.doors import reported_model as door_model
from routing.errors import BackendError, NoRouteError, RoutingError

__all__ = [
    "CASE_TIMEOUT",
    "Outcome",
    "Result",
    "Target",
    "case_environment",
    "check",
    "real_skip_reason",
    "run_library",
    "start_targets",
]

CASE_TIMEOUT = 30.0
"""Seconds one path of one case may take before it is failed (a bug must not hang a run)."""

REAL_PROBE_TIMEOUT = 5.0
"""Seconds a probe of a real llama.cpp server may take in a real run.

The cases' probe timeouts (0.3-0.5 s) are tuned for fakes; a real server on a loaded 2-core
machine (another server generating, the gateway starting) once took longer (seen in CI: both
members DOWN, "no answer within 0.4s"). Only real members get the patience: fakes keep the
case's timeouts, so a fake that hangs is still DOWN as soon as the case says.
"""

MESSAGES = ({"role": "user", "content": "Say hi"},)
_PLACEHOLDER = re.compile(r"\$\{(PORT|URL)_([A-Za-z0-9_.-]+)\}")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a member really listens; ``fake`` is None for real or user-run backends."""

    member: Member
    url: str
    fake: FakeServer | None = None
    real: bool = False

    @property
    def port(self) -> int:
        """The TCP port of :attr:`url`."""
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])


@dataclass(slots=True)
class Outcome:
    """What happened on one path: who answered, or what was raised."""

    instance: str | None = None
    model: str | None = None
    failovers: int | None = None
    fallback_used: bool | None = None
    warnings: tuple[str, ...] = ()
    error: str | None = None
    error_classes: tuple[str, ...] = ()
    message: str = ""
    candidates: dict[str, str] = field(default_factory=dict)
    text: str = ""
    reply_model: str | None = None
    stream_broken: bool = False
    http_status: int | None = None
    elapsed: float = 0.0


@dataclass(frozen=True, slots=True)
class Result:
    """The verdict of one case on one path: ``status`` is ``pass``, ``fail`` or ``skip``."""

    case: str
    area: str
    path: str
    status: str
    detail: str = ""


def real_skip_reason(case: Case) -> str | None:
    """Why ``case`` cannot run against real llama.cpp servers, or None if it can."""
    if not case.real:
        llamas = [m for m in case.fleet if m.kind == "llamacpp"]
        if not llamas:
            kinds = sorted({m.kind or "url" for m in case.fleet})
            return f"no llama.cpp member ({', '.join(kinds)} only)"
        for m in llamas:
            if m.fault != "none" or m.chat_fault is not None:
                return f"needs a fake's fault {m.chat_fault or m.fault!r} on {m.name}"
            if m.state == "loading":
                return f"needs a fake held in the loading state ({m.name})"
        return "fake-only case (no real: members)"
    for name in case.real:
        m = case.member(name)
        if m.fault != "none" or m.chat_fault is not None:
            return f"real llama.cpp cannot fake fault {m.chat_fault or m.fault!r} ({name})"
        if m.state == "loading":
            return f"real llama.cpp cannot be held in the loading state ({name})"
        if m.router_mode or m.busy:
            return f"needs a fake's router mode or busy slots ({name})"
        if m.embeddings:
            return f"needs a fake started with --embeddings ({name})"
        if not m.models:
            return f"member {name} names no model to use as --alias"
    return None


@contextmanager
def case_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Set ``env`` in ``os.environ`` for the case (API keys are read from it), then restore."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@asynccontextmanager
async def start_targets(
    case: Case, real: Mapping[str, Sequence[str]] | None = None
) -> AsyncIterator[dict[str, Target]]:
    """Start the case's fakes and yield every member's :class:`Target`.

    With ``real`` (alias -> URLs of real llama.cpp servers started with that ``--alias``),
    the members in ``case.real`` use those servers, the n-th member with an alias the n-th
    URL. ``down`` members are fakes started (to own a port) and stopped again.
    """
    use_real = {n for n in case.real if real is not None and case.member(n).state == "up"}
    fakes = [m for m in case.fleet if m.fake and m.name not in use_real]
    fleet = Fleet.from_specs(
        [
            {
                "name": m.name,
                "kind": m.kind,
                "models": list(m.models),
                "fault": m.fault,
                "api_key": m.api_key,
                "embeddings": m.embeddings,
            }
            for m in fakes
        ]
    )
    taken: dict[str, int] = {}
    async with fleet:
        targets: dict[str, Target] = {}
        for m in case.fleet:
            if m.name in use_real:
                alias = m.models[0]
                urls = (real or {}).get(alias, ())
                index = taken[alias] = taken.get(alias, -1) + 1
                if index >= len(urls):
                    raise CaseError(
                        f"{case.name}: no real llama.cpp server left with alias {alias!r}"
                    )
                targets[m.name] = Target(m, urls[index], real=True)
            elif m.url is not None:
                targets[m.name] = Target(m, m.url)
            else:
                server = fleet[m.name]
                targets[m.name] = Target(m, server.url, fake=server)
                if m.router_mode:
                    server.set_router_mode(loaded=m.loaded)
                elif m.loaded is not None:
                    server.set_loaded(m.loaded)
                if m.busy:
                    server.set_busy(m.busy)
                if m.state == "loading":
                    server.set_loading(True)
                elif m.state == "down":
                    await server.stop()
        yield targets


def render_config(case: Case, targets: Mapping[str, Target]) -> str:
    """The case's config text with ``${PORT_x}`` / ``${URL_x}`` replaced."""

    def replace(match: re.Match[str]) -> str:
        what, name = match.groups()
        if name not in targets:
            raise CaseError(f"{case.name}: config names ${{{what}_{name}}}, not in the fleet")
        target = targets[name]
        return str(target.port) if what == "PORT" else target.url

    return _patient_with_real(_PLACEHOLDER.sub(replace, case.config), targets)


def _patient_with_real(text: str, targets: Mapping[str, Target]) -> str:
    """``text`` with :data:`REAL_PROBE_TIMEOUT` for the instances on real servers.

    The probe fan-out bound (``defaults.probe.timeout``) is raised to it, and every other
    instance is pinned to the probe timeout it had, so only real members wait longer.
    Unchanged when no member is real.
    """
    real = {t.port for t in targets.values() if t.real}  # real servers listen on 127.0.0.1
    if not real:
        return text
    data = yaml.safe_load(text)
    defaults = data.setdefault("defaults", {})
    probe = defaults.setdefault("probe", {})
    given = float(probe.get("timeout", ProbeSettings().timeout))
    probe["timeout"] = max(given, REAL_PROBE_TIMEOUT)
    for provider in data.get("providers", {}).values():
        for instance in provider.get("instances", {}).values():
            own = float(instance.get("probe_timeout", given))
            port = instance.get("port") or urlsplit(str(instance.get("url", ""))).port
            instance["probe_timeout"] = max(own, REAL_PROBE_TIMEOUT) if port in real else own
    return str(yaml.safe_dump(data, sort_keys=False))


def set_chat_faults(targets: Mapping[str, Target]) -> None:
    """Switch every fake with a ``chat_fault`` to it (after the probes have run)."""
    for target in targets.values():
        if target.fake is not None and target.member.chat_fault is not None:
            target.fake.set_fault(target.member.chat_fault)


def chat_request(case: Case) -> dict[str, Any]:
    """The OpenAI-shaped request body the case sends."""
    body: dict[str, Any] = {
        "messages": list(MESSAGES),
        "max_tokens": case.request.max_tokens,
        "stream": case.request.stream,
    }
    if case.request.model is not None:
        body["model"] = case.request.model
    return body


def _record_error(outcome: Outcome, exc: RoutingError) -> None:
    outcome.error = type(exc).__name__
    outcome.error_classes = tuple(c.__name__ for c in type(exc).__mro__)
    outcome.message = str(exc)
    if isinstance(exc, NoRouteError):
        outcome.candidates = {c.instance: c.state for c in exc.candidates}


async def run_library(case: Case, targets: Mapping[str, Target]) -> Outcome:
    """Send the case's request through :class:`Router` (resolve + complete / open_stream)."""
    config = parse_config(
        render_config(case, targets), file=f"<{case.name}>", environ=dict(case.env)
    )
    outcome = Outcome()
    provider = case.request.provider
    try:
        operation, request = library_request(case)
    except RoutingError as exc:  # the Ollama doors refuse what they cannot translate
        _record_error(outcome, exc)
        return outcome
    async with Router(config) as router:
        if any(t.member.chat_fault for t in targets.values()):
            with suppress(NoRouteError):  # the probes ran; that is all the warm-up is for
                await router.resolve(provider=provider, model=case.request.model)
            set_chat_faults(targets)
        started = time.perf_counter()
        try:
            if case.request.stream and operation is not Operation.EMBEDDING:
                handle = await router.open_stream(request, provider=provider, operation=operation)
                decision, outcome.failovers = handle.decision, handle.failovers
                async with handle:
                    try:
                        async for chunk in handle:
                            take(outcome, operation, "openai", chunk)
                    except BackendError as exc:
                        outcome.stream_broken = True
                        outcome.message = str(exc)
            else:
                completion = await router.complete(request, provider=provider, operation=operation)
                decision, outcome.failovers = completion.decision, completion.failovers
                outcome.reply_model = door_model(operation, completion.reply)
                outcome.text = door_text(operation, "openai", completion.reply)
        except RoutingError as exc:
            _record_error(outcome, exc)
        else:
            outcome.instance, outcome.model = decision.instance, decision.model
            outcome.fallback_used, outcome.warnings = decision.fallback_used, decision.warnings
            outcome.candidates = {c.instance: c.state for c in decision.trace}
        outcome.elapsed = time.perf_counter() - started
    return outcome


def take_chunk(outcome: Outcome, chunk: Mapping[str, Any]) -> None:
    """Add a stream chunk's text (and the first model it names) to ``outcome``."""
    if outcome.reply_model is None and isinstance(chunk.get("model"), str):
        outcome.reply_model = chunk["model"]
    for choice in chunk.get("choices") or ():
        content = (choice.get("delta") or {}).get("content")
        if isinstance(content, str):
            outcome.text += content


def reply_text(reply: Mapping[str, Any]) -> str:
    """The assistant text of an OpenAI ``chat.completion`` reply."""
    for choice in reply.get("choices") or ():
        content = (choice.get("message") or {}).get("content")
        if isinstance(content, str):
            return content
    return ""


def answered_by(outcome: Outcome, targets: Mapping[str, Target]) -> set[str]:
    """Members the reply may come from: a fake by ``port N`` in its text, others by model.

    Real servers sharing an alias cannot be told apart by their reply: all of them are
    returned (``instance`` still tells them apart).
    """
    for name, target in targets.items():
        if target.fake is not None and re.search(rf"\bport {target.port}\b", outcome.text):
            return {name}
    return {
        name
        for name, target in targets.items()
        if target.fake is None
        and target.member.models
        and outcome.reply_model == target.member.models[0]
    }


def check(case: Case, path: str, outcome: Outcome, targets: Mapping[str, Target]) -> list[str]:
    """Every difference between ``outcome`` and ``case.expect`` (empty: the case passed)."""
    e, o, problems = case.expect, outcome, []

    def differ(what: str, want: object, got: object) -> None:
        if want is not None and want != got:
            problems.append(f"{what}: want {want!r}, got {got!r}")

    if e.error is not None:
        if e.error not in o.error_classes and path == "library":
            problems.append(
                f"error: want {e.error}, got {o.error or 'an answer from ' + str(o.instance)}"
            )
    elif o.error is not None:  # the rest would only repeat that nothing answered
        return [
            f"unexpected {o.error}"
            + (f" (HTTP {o.http_status})" if o.http_status else "")
            + f": {o.message[:300]}"
        ]
    if path == "gateway":
        want_status = e.http_status if e.error is not None else 200
        if e.error is not None and want_status is None:
            if o.http_status is None or o.http_status < 400:
                problems.append(f"http status: want an error, got {o.http_status}")
        else:
            differ("http status", want_status, o.http_status)
        if e.error == "NoRouteError" and o.http_status == 404 and case.request.door == "openai":
            differ("error code", "model_not_found", o.error)
    if e.error is None:
        differ("instance", e.instance, o.instance)
        if path == "library":
            differ("model", e.model, o.model)
            differ("fallback_used", e.fallback_used, o.fallback_used)
        if e.answered_by is not None:
            who = answered_by(o, targets)
            if e.answered_by not in who:
                problems.append(
                    f"answered by: want {e.answered_by!r}, got "
                    f"{', '.join(sorted(who)) or 'no member of the fleet'} "
                    f"(reply {o.text[:80]!r}, model {o.reply_model!r})"
                )
        if o.failovers is not None:
            differ("failovers", e.failovers, o.failovers)
        if e.warning is not None:
            differ("wrong-model warning", e.warning, bool(o.warnings))
        differ("stream broken", e.stream_broken, o.stream_broken)
    if path == "library" or e.error is not None:
        for instance, state in e.candidates.items():
            differ(f"candidate {instance}", state, o.candidates.get(instance))
    if e.within is not None and o.elapsed > e.within:
        problems.append(f"took {o.elapsed:.2f}s, bound is {e.within:g}s")
    problems.extend(_check_requests(case, targets))
    return problems


def _check_requests(case: Case, targets: Mapping[str, Target]) -> list[str]:
    problems = []
    for name, want in case.expect.loads.items():
        fake = targets[name].fake
        if fake is not None and fake.state()["loads"] != want:
            problems.append(f"{name} loaded a model {fake.state()['loads']} times, want {want}")
    for name, paths in case.expect.probed.items():
        fake = targets[name].fake
        if fake is None:
            continue
        seen = {r["path"] for r in fake.requests}
        missing = [p for p in paths if p not in seen]
        if missing:
            problems.append(f"{name} never asked {missing} (asked {sorted(seen)})")
    for name in case.expect.no_auth:
        fake = targets[name].fake
        if fake is None:
            continue
        for r in fake.requests:
            keys = {k.lower() for k in r["headers"]}
            if keys & {"authorization", "x-api-key"}:
                problems.append(f"{name} was sent an API key on {r['method']} {r['path']}")
                break
    return problems
