"""The conformance suite (cases as data in ``cases/``) driven through pytest.

Every case runs against fakes through the library and, when :mod:`routing._gateway` is
there, through the gateway. The ``real`` test runs the real-capable cases against real
llama.cpp servers (extra ``real``), started once for the module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from routing.config import parse_config
from routing.conformance import gateway_path
from routing.conformance.cases import Case, CaseError, Expect, load_cases, parse_case
from routing.conformance.driver import REAL_PROBE_TIMEOUT, Target, real_skip_reason, render_config
from routing.conformance.paths import run_path
from routing.conformance.real_llamacpp import RealPool, missing_reason
from routing.conformance.runner import main_conformance, real_aliases, run_suite

CASES_DIR = Path(__file__).parent / "cases"
CASES = load_cases(CASES_DIR)
REAL_CASES = [c for c in CASES if real_skip_reason(c) is None]
PATHS = ["library", "gateway"]


def _gateway_skip() -> None:
    reason = gateway_path.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, path: str) -> None:
    """The case's outcome on this path (library or gateway) is the expected one."""
    if path == "gateway":
        _gateway_skip()
    result = asyncio.run(run_path(case, path))
    assert result.status == "pass", f"{case.source}: {result.detail}"


def test_suite_size_and_coverage() -> None:
    """At least 40 cases, every area present, every field bug (1-6) reproduced."""
    assert len(CASES) >= 40
    assert {c.area for c in CASES} >= {
        "resolution",
        "rules",
        "api-style",
        "fault",
        "field-bug",
        "stream",
    }
    assert {c.bug for c in CASES} >= {1, 2, 3, 4, 5, 6}
    faults = {m.fault.split(":")[0] for c in CASES for m in c.fleet} | {
        (m.chat_fault or "none").split(":")[0] for c in CASES for m in c.fleet
    }
    assert faults >= {"hang", "loading", "error500", "garbage", "drop", "slow", "wrong-model"}


@pytest.mark.parametrize("path", PATHS)
def test_wrong_expectation_fails(path: str) -> None:
    """The driver is not lenient: a case expecting the wrong instance fails with a reason."""
    if path == "gateway":
        _gateway_skip()
    case = next(c for c in CASES if c.name == "bug4-second-model-goes-to-second-instance")
    wrong = dataclasses.replace(
        case, expect=Expect(instance="llamacpp:a", answered_by="a", failovers=1)
    )
    result = asyncio.run(run_path(wrong, path))
    assert result.status == "fail"
    assert "instance: want 'llamacpp:a', got 'llamacpp:b'" in result.detail
    assert "answered by: want 'a', got b" in result.detail
    assert "failovers: want 1, got 0" in result.detail


def test_bad_case_is_reported() -> None:
    """A malformed case names its problem instead of running."""
    with pytest.raises(CaseError, match="exactly one of kind"):
        parse_case(
            {
                "name": "x",
                "area": "a",
                "fleet": [{"name": "a"}],
                "config": "",
                "request": {},
                "expect": {"error": "NoRouteError"},
            }
        )


def test_main_conformance_filters_and_exits_zero() -> None:
    """``routing conformance -k bug4`` runs only the bug-4 cases and exits 0."""
    out = io.StringIO()
    assert main_conformance("fake", None, "bug4", out=out) == 0
    text = out.getvalue()
    assert "bug4-second-model-goes-to-second-instance" in text
    assert "rule-glob" not in text
    assert "3 passed, 0 failed, 0 skipped" in text


def test_main_conformance_usage_errors() -> None:
    """A bad --backends, a missing case path or an unmatched pattern exit 2."""
    assert main_conformance("nope", None, None, out=io.StringIO()) == 2
    assert main_conformance("fake", "/nonexistent/cases", None, out=io.StringIO()) == 2
    assert main_conformance("fake", None, "no-case-has-this-name", out=io.StringIO()) == 2


def test_local_example_loads() -> None:
    """configs/conformance/local-backends.yaml: valid cases pointing at running backends."""
    local = Path(__file__).parents[2] / "configs" / "conformance" / "local-backends.yaml"
    cases = load_cases(local)
    assert cases
    assert all(m.url is not None for c in cases for m in c.fleet)


def test_real_members_get_a_real_probe_timeout() -> None:
    """Against real servers, only the real members' probes get :data:`REAL_PROBE_TIMEOUT`.

    The fan-out bound is raised with them; the fake that hangs keeps the case's 0.4 s, so
    it is still DOWN as soon as the case says. With fakes only, the text is the case's own.
    """
    case = next(c for c in CASES if c.name == "hang-at-probe-is-down")
    fake_a, real_b = case.member("a"), case.member("b")
    fakes = {
        "a": Target(fake_a, "http://127.0.0.1:40001"),
        "b": Target(real_b, "http://127.0.0.1:40002"),
    }
    own = case.config.replace("${PORT_a}", "40001").replace("${PORT_b}", "40002")
    assert render_config(case, fakes) == own
    real = {**fakes, "b": Target(real_b, "http://127.0.0.1:40002", real=True)}
    config = parse_config(render_config(case, real))
    timeouts = {i.name: i.probe_timeout for i in config.instances.values()}
    assert config.defaults.probe.timeout == REAL_PROBE_TIMEOUT
    assert timeouts == {"a": 0.4, "b": REAL_PROBE_TIMEOUT}
    assert config.defaults.connect_timeout == 0.3  # nothing else changed


@pytest.fixture(scope="module")
def real_urls() -> Iterator[dict[str, list[str]]]:
    """Real llama.cpp servers, one per alias the real-capable cases need, for the module."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)

    async def start() -> RealPool:
        return await RealPool(real_aliases(REAL_CASES)).start()

    pool = asyncio.run(start())
    try:
        yield pool.urls
    finally:
        pool.stop()


@pytest.mark.real
def test_real_llamacpp(real_urls: dict[str, list[str]]) -> None:
    """Every real-capable case passes with real llama.cpp servers in place of the fakes."""
    paths = ["library"] if gateway_path.unavailable_reason() else PATHS
    report = asyncio.run(run_suite(REAL_CASES, backends="real", paths=paths, real=real_urls))
    failed = [r for rs in report.results.values() for r in rs if r.status == "fail"]
    assert not failed, "\n".join(f"{r.case} ({r.path}): {r.detail}" for r in failed)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "name: x\narea: a\nfleet: [{name: a, kind: llamacpp}]\nconfig: ''\nrequest: {}\n"
            "expect: {instance: 'l:a'}\nexpectation: typo\n",
            "expectation",
        ),
        (
            "name: x\narea: a\nfleet: [{name: a, kind: llamacpp, modles: [m]}]\nconfig: ''\n"
            "request: {}\nexpect: {instance: 'l:a'}\n",
            "modles",
        ),
        (
            "cases:\n  - name: x\n    area: a\n    fleet: []\n    config: ''\n    request: {}\n"
            "    expect: {error: NoRouteError}\n",
            "fleet",
        ),
        (
            "name: x\narea: a\nfleet: [{name: a, kind: llamacpp}]\nconfig: ''\n"
            "request: {stream: 'yes'}\nexpect: {error: Nope}\n",
            "$",
        ),
    ],
)
def test_case_files_are_checked_by_their_schema(tmp_path: Path, text: str, where: str) -> None:
    """A case file breaking case.schema.json is refused with a JSON path, before running."""
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseError) as info:
        load_cases(path)
    assert str(path) in str(info.value) and where in str(info.value)


def test_every_shipped_case_file_passes_the_schema() -> None:
    """The suite's own case files all satisfy the schema (it is no stricter than them)."""
    from routing.conformance.cases import schema_problems

    for path in sorted(CASES_DIR.glob("*.yaml")):
        assert schema_problems(yaml.safe_load(path.read_text(encoding="utf-8"))) == [], path
