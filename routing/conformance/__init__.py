"""The conformance suite: YAML cases (fleet + config + request -> expected outcome) as data.

:mod:`~routing.conformance.cases` loads and checks case files, :mod:`~routing.conformance.driver`
runs one case through the library and the gateway, :mod:`~routing.conformance.runner` runs
the suite (``routing conformance``) against fakes or real llama.cpp servers
(:mod:`~routing.conformance.real_llamacpp`).
"""

from routing.conformance.cases import Case, CaseError, load_cases
from routing.conformance.driver import Result
from routing.conformance.paths import run_case

__all__ = ["Case", "CaseError", "Result", "load_cases", "run_case"]
