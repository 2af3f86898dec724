"""Running a case on a path: the library path (:mod:`driver`) or the gateway path
(:mod:`gateway_path`), judged the same way.  Kept apart from both so neither imports the
other."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from routing.conformance import gateway_path
from routing.conformance.cases import Case
from routing.conformance.driver import (
    CASE_TIMEOUT,
    Outcome,
    Result,
    case_environment,
    check,
    run_library,
    start_targets,
)

__all__ = ["run_case", "run_path"]


async def run_path(
    case: Case, path: str, real: Mapping[str, Sequence[str]] | None = None
) -> Result:
    """Run ``case`` on ``path`` (``library`` or ``gateway``) and judge it."""
    if path == "gateway" and gateway_path.unavailable_reason() is not None:
        return Result(case.name, case.area, path, "skip", gateway_path.unavailable_reason() or "")
    try:
        with case_environment(case.env):
            async with asyncio.timeout(CASE_TIMEOUT), start_targets(case, real) as targets:
                if path == "library":
                    outcome = await run_library(case, targets)
                else:
                    outcome = await gateway_path.run_gateway(case, targets)
                problems = check(case, path, outcome, targets)
                for target in targets.values():
                    if target.fake is not None:
                        target.fake.check()
    except TimeoutError:
        return Result(case.name, case.area, path, "fail", f"no verdict within {CASE_TIMEOUT:g}s")
    except Exception as exc:  # a broken case or a crash is a failure, never a crashed run
        return Result(case.name, case.area, path, "fail", f"{type(exc).__name__}: {exc}")
    if problems:
        return Result(case.name, case.area, path, "fail", "; ".join(problems))
    return Result(case.name, case.area, path, "pass", _summary(outcome))


def _summary(o: Outcome) -> str:
    if o.error is not None:
        return f"{o.error}" + (f" ({o.http_status})" if o.http_status else "")
    extra = f", {o.failovers} failover(s)" if o.failovers else ""
    return f"-> {o.instance}{extra}"


async def run_case(
    case: Case,
    paths: tuple[str, ...] = ("library", "gateway"),
    real: Mapping[str, Sequence[str]] | None = None,
) -> list[Result]:
    """Run ``case`` on each of ``paths``; one :class:`Result` per path."""
    return [await run_path(case, path, real) for path in paths]
