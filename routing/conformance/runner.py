"""Run the conformance suite and print a pass/fail table (``routing conformance``).

``--backends fake`` runs every case against fakes. ``--backends real`` runs the cases that
declare ``real:`` members against real llama.cpp servers (one per alias a case needs,
started once for the whole run and always stopped), and skips the others, saying why.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from routing.conformance import gateway_path
from routing.conformance.cases import Case, CaseError, load_cases
from routing.conformance.driver import Result, real_skip_reason
from routing.conformance.paths import run_path
from routing.conformance.real_llamacpp import RealPool, missing_reason

__all__ = [
    "PATHS",
    "Report",
    "default_cases_dir",
    "format_report",
    "main_conformance",
    "real_aliases",
    "run_suite",
]

PATHS = ("library", "gateway")
"""The ways a case is sent: through :class:`routing._engine.Router`, and through the gateway."""


@dataclass(slots=True)
class Report:
    """Every result of a run, grouped by case, with the wall time."""

    cases: list[Case]
    results: dict[str, list[Result]] = field(default_factory=dict)
    seconds: float = 0.0

    def status(self, case: str) -> str:
        """``fail`` if any path failed, else ``pass`` if any passed, else ``skip``."""
        statuses = {r.status for r in self.results.get(case, [])}
        if "fail" in statuses:
            return "fail"
        return "pass" if "pass" in statuses else "skip"

    def counts(self) -> Counter[str]:
        """How many cases passed, failed, were skipped."""
        return Counter(self.status(c.name) for c in self.cases)

    @property
    def ok(self) -> bool:
        """True when no case failed."""
        return self.counts()["fail"] == 0


def default_cases_dir() -> Path | None:
    """The suite's case directory: ``tests/conformance/cases`` of the source tree or the
    current directory (the cases are not installed with the package), or None."""
    here = Path(__file__).resolve().parents[2] / "tests" / "conformance" / "cases"
    for candidate in (here, Path.cwd() / "tests" / "conformance" / "cases"):
        if candidate.is_dir():
            return candidate
    return None


def real_aliases(cases: Sequence[Case]) -> dict[str, int]:
    """``{alias: servers needed}`` for the real-capable cases (most any one case uses)."""
    need: Counter[str] = Counter()
    for case in cases:
        if real_skip_reason(case) is not None:
            continue
        used = Counter(case.member(n).models[0] for n in case.real if case.member(n).state == "up")
        need |= used
    return dict(need)


@contextmanager
def _quiet_routing_log() -> Iterator[None]:
    """Keep the engine's warnings (wrong-model replies, expected here) out of the table."""
    logger, handler = logging.getLogger("routing"), logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


async def run_suite(
    cases: Sequence[Case],
    *,
    backends: str = "fake",
    paths: Sequence[str] = PATHS,
    real: Mapping[str, Sequence[str]] | None = None,
) -> Report:
    """Run ``cases`` on ``paths``; with ``backends="real"``, ``real`` maps alias -> URLs."""
    report = Report(list(cases))
    started = time.perf_counter()
    with _quiet_routing_log():
        for case in cases:
            reason = real_skip_reason(case) if backends == "real" else None
            if reason is not None:
                report.results[case.name] = [
                    Result(case.name, case.area, p, "skip", reason) for p in paths
                ]
                continue
            report.results[case.name] = [
                await run_path(case, p, real if backends == "real" else None) for p in paths
            ]
    report.seconds = time.perf_counter() - started
    return report


def format_report(report: Report) -> str:
    """The table (case, area, library, gateway, detail), skips with reasons, counts."""
    paths = sorted(
        {r.path for rs in report.results.values() for r in rs},
        key=lambda p: PATHS.index(p) if p in PATHS else len(PATHS),
    )
    width = max([len(c.name) for c in report.cases] + [4])
    area_width = max([len(c.area) for c in report.cases] + [4])
    head = f"{'case':<{width}}  {'area':<{area_width}}  " + "".join(f"{p:<9}" for p in paths)
    lines = [head + "detail", "-" * (len(head) + 30)]
    skipped: list[str] = []
    for case in report.cases:
        results = report.results.get(case.name, [])
        by_path = {r.path: r for r in results}
        cells = "".join(f"{by_path[p].status if p in by_path else '-':<9}" for p in paths)
        failed = [f"{r.path}: {r.detail}" for r in results if r.status == "fail"]
        shown = [r for r in results if r.status != "skip"]
        detail = "; ".join(failed) or (
            shown[0].detail if shown else (results[0].detail if results else "")
        )
        lines.append(f"{case.name:<{width}}  {case.area:<{area_width}}  {cells}{detail}")
        reasons = {r.detail for r in results if r.status == "skip"}
        skipped.extend(f"  {case.name}: {reason}" for reason in sorted(reasons))
    if skipped:
        lines += ["", "skipped:", *skipped]
    areas = Counter(c.area for c in report.cases)
    lines += ["", "cases by area: " + ", ".join(f"{a} {n}" for a, n in sorted(areas.items()))]
    counts = report.counts()
    lines.append(
        f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped "
        f"in {report.seconds:.1f}s"
    )
    return "\n".join(lines)


async def _run(cases: list[Case], backends: str, paths: Sequence[str], out: TextIO) -> Report:
    if backends != "real":
        return await run_suite(cases, backends=backends, paths=paths)
    aliases = real_aliases(cases)
    if not aliases:
        return await run_suite(cases, backends="real", paths=paths)
    count = sum(aliases.values())
    names = ", ".join(a if n == 1 else f"{a} x{n}" for a, n in aliases.items())
    print(f"starting {count} real llama.cpp server(s) (--alias): {names}", file=out, flush=True)
    async with RealPool(aliases) as pool:
        return await run_suite(cases, backends="real", paths=paths, real=pool.urls)


def main_conformance(
    backends: str, config: str | None, pattern: str | None, *, out: TextIO | None = None
) -> int:
    """``routing conformance``: run the suite, print the table; the process exit code.

    ``backends`` is ``fake`` or ``real``; ``config`` a case file or directory (default:
    the repository's ``tests/conformance/cases``); ``pattern`` keeps the cases whose name,
    area or ``bugN`` contains it. Exit 0 when nothing failed, 1 when a case failed, 2 for
    bad usage, unreadable case files or a missing ``real`` extra.
    """
    out = out or sys.stdout
    if backends not in ("fake", "real"):
        print(f"error: --backends must be fake or real, not {backends!r}", file=out)
        return 2
    location = Path(config) if config else default_cases_dir()
    if location is None:
        print(
            "error: the conformance cases were not found (they live in the source "
            "tree's tests/conformance/cases); pass --config FILE_OR_DIR",
            file=out,
        )
        return 2
    try:
        cases = load_cases(location, pattern)
    except CaseError as exc:
        print(f"error: {exc}", file=out)
        return 2
    if not cases:
        print(f"error: no case matches {pattern!r} in {location}", file=out)
        return 2
    if backends == "real" and (reason := missing_reason()) is not None:
        print(f"error: --backends real needs real llama.cpp: {reason}", file=out)
        return 2
    paths = ["library"]
    if (reason := gateway_path.unavailable_reason()) is None:
        paths.append("gateway")
    else:
        print(f"note: gateway path not run: {reason}", file=out)
    try:
        report = asyncio.run(_run(cases, backends, paths, out))
    except RuntimeError as exc:  # a real server did not start
        print(f"error: {exc}", file=out)
        return 2
    print(format_report(report), file=out)
    return 0 if report.ok else 1
