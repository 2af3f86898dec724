"""A request body's bytes as a JSON object, or an :class:`InvalidRequest` saying why not.

Every hostile body ends in an answer, never in an exception the gateway did not expect:

- not UTF-8 (JSON on the wire is UTF-8, RFC 8259; a leading BOM is tolerated);
- not JSON, or JSON whose top level is not an object;
- ``NaN``, ``Infinity``, ``-Infinity`` (Python's json accepts them; no backend does) and
  numbers that overflow a double (``1e999``);
- integers longer than Python converts (4300 digits);
- nesting deeper than :data:`MAX_DEPTH` (the parser would recurse, and so would every
  encoder after it);
- strings or keys holding a lone surrogate (``"\\ud800"`` parses, then fails to encode).

The common body pays for little of this: the depth is measured (level by level, once
parsed) only when the body holds more than :data:`MAX_DEPTH` opening brackets, counted at C
speed; strings are searched for lone surrogates only when the raw bytes hold a surrogate
escape that is not part of a pair (or any, next to an escaped backslash). Brackets are
never matched up in the raw bytes: those inside strings would hide real nesting there, or
make text look nested.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from routing import _json
from routing.errors import InvalidRequest

__all__ = ["MAX_DEPTH", "parse_json_object"]

#: The deepest nesting of arrays and objects a request may have.
MAX_DEPTH = 64

# A surrogate escape (\uD800-\uDFFF) that is not a high one followed by a low one, and not
# a low one preceded by a high one: only then can a string hold a lone surrogate. Exact
# while the body holds no escaped backslash; with one (``"\\ud800\udc00"`` is a backslash,
# text "ud800" and a lone low surrogate), any surrogate escape sends the body to the walk.
_LONE_ESCAPE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _NonFinite(ValueError):
    """A number JSON cannot carry to a backend."""


def _constant(name: str) -> Any:
    raise _NonFinite(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NonFinite(f"number {text[:40]} is too large")
    return value


_DECODER = json.JSONDecoder(parse_float=_float, parse_constant=_constant)


def parse_json_object(data: bytes) -> dict[str, Any]:
    """``data`` parsed as a JSON object; :class:`InvalidRequest` (``param`` empty) if not."""
    if not data:
        raise _invalid("request body is empty; expected a JSON object", "empty_body")
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise _invalid(
            f"request body is not valid UTF-8 JSON: {exc.reason} at byte {exc.start}",
            "invalid_encoding",
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        body = _json.loads(text, _DECODER.decode)  # (the C parser stops at the recursion limit)
    except _NonFinite as exc:
        raise _invalid(f"request body is not valid JSON: {exc}", "invalid_json") from None
    except RecursionError:
        raise _too_deep_error() from None
    except ValueError as exc:  # JSONDecodeError, and ints beyond 4300 digits
        raise _invalid(f"request body is not valid JSON: {exc}", "invalid_json") from None
    # Nesting needs an opening bracket per level: few brackets, no need to measure.
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _depth(body) > MAX_DEPTH:
        raise _too_deep_error()
    if not isinstance(body, dict):
        raise _invalid(
            f"request body must be a JSON object, got {_JSON_NAMES.get(type(body), 'a value')}",
            "invalid_type",
        )
    if b"\\u" in data and (
        _LONE_ESCAPE.search(data) is not None
        or (b"\\\\" in data and _SURROGATE_ESCAPE.search(data) is not None)
    ):
        where = _lone_surrogate(body)
        if where is not None:
            raise InvalidRequest(
                f"Invalid '{where}': the string holds a lone surrogate (an unpaired "
                "\\ud800-\\udfff escape), which is not Unicode text.",
                param=where,
                code="invalid_unicode",
            )
    return body


_JSON_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _invalid(message: str, code: str) -> InvalidRequest:
    return InvalidRequest(message, param="", code=code)


def _too_deep_error() -> InvalidRequest:
    return _invalid(f"request body is nested deeper than {MAX_DEPTH} levels", "too_deep")


def _depth(value: Any) -> int:
    """The nesting depth of a parsed value, up to ``MAX_DEPTH + 1`` (level by level: no
    recursion on hostile input, and no walk deeper than the limit)."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level and depth <= MAX_DEPTH:
        depth += 1
        below: list[Any] = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level = below
    return depth


def _lone_surrogate(value: Any) -> str | None:
    """The path of the first string (or key) holding a lone surrogate, or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item) is not None:
                return path or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                if _SURROGATE.search(key) is not None:
                    return (path or "body") + ".<key>"
                name = key if len(key) <= 64 and key.isprintable() else "<key>"
                stack.append((child, f"{path}.{name}" if path else name))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return None
