"""The conformance format's strategy knobs: members' `router_mode` / `loaded` / `busy`
and `expect.loads` are checked (a wrong count fails the case) and validated."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from routing.conformance.cases import CaseError, load_cases, parse_case, schema_problems
from routing.conformance.paths import run_path

CASES = Path(__file__).parents[1] / "conformance" / "cases" / "strategies.yaml"


def _case(**member: Any) -> dict[str, Any]:
    return {
        "name": "x",
        "area": "strategy",
        "fleet": [{"name": "a", **member}],
        "config": "",
        "request": {},
        "expect": {"instance": "llamacpp:a"},
    }


@pytest.mark.parametrize("path", ["library", "gateway"])
def test_wrong_load_count_fails(path: str) -> None:
    """A case expecting a load that did not happen fails, naming the member and counts."""
    case = next(c for c in load_cases(CASES) if c.name == "warm-beats-cold-router-mode-first")
    wrong = dataclasses.replace(case, expect=dataclasses.replace(case.expect, loads={"r": 1}))
    result = asyncio.run(run_path(wrong, path))
    assert result.status == "fail"
    assert "r loaded a model 0 times, want 1" in result.detail


def test_knobs_are_validated() -> None:
    """router_mode is for llamacpp fakes, loaded needs router mode or Ollama, busy is a
    whole number for llamacpp; the schema refuses a negative busy and unknown loads."""
    with pytest.raises(CaseError, match="router_mode"):
        parse_case(_case(kind="ollama", router_mode=True))
    with pytest.raises(CaseError, match="loaded: needs"):
        parse_case(_case(kind="llamacpp", loaded=["a.gguf"]))
    with pytest.raises(CaseError, match="busy"):
        parse_case(_case(kind="ollama", busy=2))
    with pytest.raises(CaseError, match="not in the fleet"):
        parse_case(
            {**_case(kind="llamacpp"), "expect": {"instance": "llamacpp:a", "loads": {"zz": 0}}}
        )
    assert schema_problems(_case(kind="llamacpp", busy=-1))
    assert not schema_problems(_case(kind="llamacpp", router_mode=True, loaded=["m"], busy=1))
    member = parse_case(_case(kind="llamacpp", router_mode=True, loaded="m", busy=1)).fleet[0]
    assert (member.router_mode, member.loaded, member.busy) == (True, ("m",), 1)


def test_strategy_cases_cover_every_strategy() -> None:
    """The strategy cases name every strategy and a warm-over-cold case for each."""
    cases = [c for c in load_cases(CASES) if c.area == "strategy"]
    text = " ".join(c.config for c in cases)
    for strategy in ("round-robin", "least-busy", "sticky", "first"):
        assert f"strategy: {strategy}" in text
    assert sum(1 for c in cases if c.name.startswith("warm-beats-cold")) >= 5
