"""Rule regexes: compiled at load, refused when too long or at risk of catastrophic backtracking."""

from __future__ import annotations

import pytest

from routing._semantics import MAX_REGEX_LENGTH, regex_problem

SAFE = [
    "qwen.*",
    r"^gpt-4o(-mini)?$",
    r"llama3(\.\d+)?:\d+b",
    r"(a|b)+",
    r"\d+(\.\d+)*",  # a separator no digit matches: one way to match
    r"([a-z]+-)+\d",
    r"(-\d+)+",
    r"(\d+\.)+\d+",
    r"(\w+\W)+",
    r"([^-]+-)+",
    r"x{1,5}+",
    r"(?P<n>a)(?P=n)+",
    r".*-instruct-q[48]_[0-9]\.gguf",
    "a" * MAX_REGEX_LENGTH,
]

UNSAFE = [
    "(a+)+",
    "(a*)*",
    r"(\w+\s?)+$",  # the separator is optional
    "(.*a){20}",  # . matches the separator
    "(?:a+){2,}",
    r"(\d+\.\d+)*$",  # two runs of digits meet between rounds
    "(a+a)+",
    "([^-]+x)+",  # x is in [^-]
    "(?=(a+)+)",
    r"(\.\d+|x)+",
]


@pytest.mark.parametrize("pattern", SAFE)
def test_safe_patterns_accepted(pattern: str) -> None:
    """A pattern with at most one way to match each input is accepted."""
    assert regex_problem(pattern) is None


@pytest.mark.parametrize("pattern", UNSAFE)
def test_nested_repeats_refused(pattern: str) -> None:
    """An unbounded repeat inside a repeat, without a disjoint separator, is refused."""
    problem = regex_problem(pattern)
    assert problem is not None
    assert problem.startswith("regex risks catastrophic backtracking")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("qwen(2.5", "invalid regex: missing ), unterminated subpattern at position 4"),
        ("[", "invalid regex: unterminated character set at position 0"),
        ("a{99999999999}", "invalid regex: the repetition number is too large"),
        (
            "a" * (MAX_REGEX_LENGTH + 1),
            f"regex is {MAX_REGEX_LENGTH + 1} characters long; at most {MAX_REGEX_LENGTH} allowed",
        ),
    ],
)
def test_broken_patterns_refused(pattern: str, message: str) -> None:
    """A regex that does not compile, or is too long, is refused with the reason."""
    assert regex_problem(pattern) == message
