"""The errors the compiled request checks raise, in the words and codes of OpenAI's own.

A check raises a :class:`BadValue` holding a code and a message still to be given the
field's name; containers add their key to its path on the way out, and
:func:`routing._request_fields.compile_spec` turns it into an
:class:`~routing.errors.InvalidRequest` naming the field by :func:`param_path`. The
functions below build the problems several checks share; a check that alone finds a
problem builds its :class:`BadValue` itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeAlias

__all__ = [
    "BadValue",
    "Message",
    "missing_error",
    "param_path",
    "range_error",
    "show",
    "type_error",
]

Message: TypeAlias = Callable[[str], str]


class BadValue(Exception):
    """A problem inside a value: ``message(param)`` once the path is known."""

    def __init__(self, code: str, message: Message) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.path: list[str | int] = []


def param_path(path: list[str | int]) -> str:
    """``["content", 2, "messages"]`` (innermost first) -> ``messages[2].content``."""
    out = ""
    for part in reversed(path):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if len(part) <= 64 and part.isprintable() else show(part, 64)
            out += f".{name}" if out else name
    return out


def show(value: Any, limit: int = 40) -> str:
    """``value`` as short, log-safe JSON text (non-ASCII and lone surrogates escaped)."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    """The JSON type of ``value`` in OpenAI's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def type_error(value: Any, what: str) -> BadValue:
    """``value`` is not of the JSON type ``what`` names."""
    got = _kind(value)
    return BadValue(
        "invalid_type", lambda p: f"Invalid type for '{p}': expected {what}, but got {got} instead."
    )


def range_error(value: float, lo: float, hi: float, integer: bool) -> BadValue:
    """``value`` is outside ``[lo, hi]``, or not finite."""
    if value != value or value in (float("inf"), float("-inf")):
        return BadValue(
            "invalid_value",
            lambda p: f"Invalid '{p}': expected a finite number, but got {value} instead.",
        )
    noun = "integer" if integer else "decimal"
    side, bound, sign = (
        ("above", "max", f"<= {hi:g}") if value > hi else ("below", "min", f">= {lo:g}")
    )
    return BadValue(
        f"{noun}_{side}_{bound}_value",
        lambda p: (
            f"Invalid '{p}': {noun} {side} {bound}imum value. Expected a value "
            f"{sign}, but got {show(value)} instead."
        ),
    )


def missing_error(value: dict[str, Any], name: str, what: str) -> BadValue:
    """Required field ``name`` of ``value`` is absent or null (its path already set)."""
    if name in value:
        bad = BadValue(
            "invalid_type",
            lambda p: f"Invalid type for '{p}': expected {what}, but got null instead.",
        )
    else:
        bad = BadValue(
            "missing_required_parameter", lambda p: f"Missing required parameter: '{p}'."
        )
    bad.path.append(name)
    return bad
