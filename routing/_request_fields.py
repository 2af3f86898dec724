"""Request fields as data, and the one validator that walks them.

An API's request is described once, as a tree of the small frozen nodes below (see
:mod:`routing._request_specs` for the OpenAI and Ollama descriptions). :func:`compile_spec`
turns a description into a plain function, once, at import; calling it on a parsed body
raises :class:`~routing.errors.InvalidRequest` naming the first field of the wrong type or
range by its path (``messages[2].content``, ``temperature``), in the words and codes of
OpenAI's own errors, and returns None otherwise. It never changes the body.

Rules every node follows:

- Fields a description does not name are accepted untouched (never rejected, never
  dropped): an API grows faster than our description of it.
- An optional field that is ``null`` counts as absent (as OpenAI and Ollama both treat it).
- Numbers are finite: ``NaN`` and infinities never pass, whatever the bounds.
- Booleans are not numbers, and integers are not booleans (``True`` is no ``1``).
- Arrays may be lists or tuples (library callers pass tuples), objects must be dicts.

The compiled checks raise a private :class:`_Bad` that containers complete with their key
on the way out, so a valid body, the common case, builds no path and no message at all.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from routing.errors import InvalidRequest

__all__ = [
    "AnyValue",
    "Arr",
    "Bool",
    "Check",
    "Int",
    "Node",
    "Num",
    "Obj",
    "OneOf",
    "Str",
    "Tagged",
    "compile_spec",
]

_FLOAT_MAX = sys.float_info.max
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class AnyValue:
    """Any JSON value (the field is known, its content is the backend's business)."""

    what: str = "any value"


@dataclass(frozen=True, slots=True)
class Bool:
    """``true`` or ``false``."""

    what: str = "a boolean"


@dataclass(frozen=True, slots=True)
class Str:
    """A string, at least ``min_len`` long; one of ``one_of`` when that is given."""

    min_len: int = 0
    one_of: tuple[str, ...] = ()
    what: str = "a string"


@dataclass(frozen=True, slots=True)
class Num:
    """A finite number (integer or decimal) within ``[lo, hi]``."""

    lo: float = -_FLOAT_MAX
    hi: float = _FLOAT_MAX
    what: str = "a number"


@dataclass(frozen=True, slots=True)
class Int:
    """An integer within ``[lo, hi]`` (64 bits by default: what Go and C++ servers parse).

    ``integral_float`` also accepts ``4096.0`` (Ollama reads its integer options so).
    """

    lo: int = _INT64[0]
    hi: int = _INT64[1]
    integral_float: bool = False
    what: str = "an integer"


@dataclass(frozen=True, slots=True)
class Arr:
    """An array of ``items``, ``min_items`` to ``max_items`` long."""

    items: Node = AnyValue()
    min_items: int = 0
    max_items: int | None = None
    what: str = "an array"


@dataclass(frozen=True, slots=True)
class Obj:
    """An object: ``fields`` by name, ``required`` ones present and not null.

    ``values`` describes every value of a map-like object (``logit_bias``, ``options``)
    whose keys are not listed in ``fields``.
    """

    fields: Mapping[str, Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    values: Node | None = None
    what: str = "an object"


@dataclass(frozen=True, slots=True)
class OneOf:
    """One of ``options``, chosen by the value's JSON type (string, array, object, ...)."""

    options: tuple[Node, ...]
    what: str = ""


@dataclass(frozen=True, slots=True)
class Tagged:
    """An object whose string field ``tag`` selects its description among ``variants``.

    A tag of no variant gets ``other``; a missing tag gets variant ``absent`` when given
    (``other`` otherwise, which should then require the tag).
    """

    tag: str
    variants: Mapping[str, Obj]
    other: Obj
    absent: str | None = None
    what: str = "an object"


Node: TypeAlias = AnyValue | Bool | Str | Num | Int | Arr | Obj | OneOf | Tagged
Check: TypeAlias = Callable[[Any], None]
Message: TypeAlias = Callable[[str], str]


class _Bad(Exception):
    """A problem inside a value: ``message(param)`` once the path is known."""

    def __init__(self, code: str, message: Message) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.path: list[str | int] = []


def compile_spec(spec: Node) -> Callable[[Any], None]:
    """A function checking a body against ``spec``: None, or :class:`InvalidRequest`."""
    check = _compile(spec)

    def validate(body: Any) -> None:
        try:
            check(body)
        except _Bad as bad:
            param = _param(bad.path)
            raise InvalidRequest(bad.message(param), param=param, code=bad.code) from None

    return validate


def _param(path: list[str | int]) -> str:
    """``["content", 2, "messages"]`` (innermost first) -> ``messages[2].content``."""
    out = ""
    for part in reversed(path):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if len(part) <= 64 and part.isprintable() else _show(part, 64)
            out += f".{name}" if out else name
    return out


def _show(value: Any, limit: int = 40) -> str:
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


def _type_error(value: Any, what: str) -> _Bad:
    got = _kind(value)
    return _Bad(
        "invalid_type", lambda p: f"Invalid type for '{p}': expected {what}, but got {got} instead."
    )


def _range_error(value: float, lo: float, hi: float, integer: bool) -> _Bad:
    if value != value or value in (float("inf"), float("-inf")):
        return _Bad(
            "invalid_value",
            lambda p: f"Invalid '{p}': expected a finite number, but got {value} instead.",
        )
    noun = "integer" if integer else "decimal"
    side, bound, sign = (
        ("above", "max", f"<= {hi:g}") if value > hi else ("below", "min", f">= {lo:g}")
    )
    return _Bad(
        f"{noun}_{side}_{bound}_value",
        lambda p: (
            f"Invalid '{p}': {noun} {side} {bound}imum value. Expected a value "
            f"{sign}, but got {_show(value)} instead."
        ),
    )


def _compile(node: Node) -> Check:
    compiler = _COMPILERS[type(node)]
    return compiler(node)


def _any(node: Any) -> Check:
    def check(value: Any) -> None:
        return None

    return check


def _bool(node: Bool) -> Check:
    what = node.what

    def check(value: Any) -> None:
        if value is not True and value is not False:
            raise _type_error(value, what)

    return check


def _str(node: Str) -> Check:
    what, min_len = node.what, node.min_len
    allowed = frozenset(node.one_of)

    def check(value: Any) -> None:
        if not isinstance(value, str):
            raise _type_error(value, what)
        if len(value) < min_len:
            raise _Bad(
                "empty_string",
                lambda p: (
                    f"Invalid '{p}': empty string. Expected a "
                    f"string with minimum length {min_len}, but got an empty string instead."
                ),
            )
        if allowed and value not in allowed:
            choices = ", ".join(f"'{c}'" for c in node.one_of)
            raise _Bad(
                "invalid_value",
                lambda p: (
                    f"Invalid value for '{p}': expected one of "
                    f"{choices}, but got {_show(value)} instead."
                ),
            )

    return check


def _num(node: Num) -> Check:
    lo, hi, what = node.lo, node.hi, node.what

    def check(value: Any) -> None:
        kind = type(value)
        if (
            kind is not float
            and kind is not int
            and (isinstance(value, bool) or not isinstance(value, int | float))
        ):
            raise _type_error(value, what)
        if not lo <= value <= hi:  # also false for NaN
            raise _range_error(value, lo, hi, integer=False)

    return check


def _int(node: Int) -> Check:
    lo, hi, what, integral = node.lo, node.hi, node.what, node.integral_float

    def check(value: Any) -> None:
        if type(value) is not int:
            if integral and type(value) is float and value.is_integer():
                pass
            elif isinstance(value, bool) or not isinstance(value, int):
                raise _type_error(value, what)
        if not lo <= value <= hi:
            raise _range_error(value, lo, hi, integer=True)

    return check


def _arr(node: Arr) -> Check:
    what, low, high = node.what, node.min_items, node.max_items
    items = node.items
    free = _free_type(items)
    # An array of objects checks each element's content directly (one call less each).
    item: Check = _obj_check(items) if isinstance(items, Obj) else _compile(items)
    is_obj = isinstance(items, Obj)
    item_what = items.what
    open_items = isinstance(items, AnyValue)

    def check(value: Any) -> None:
        if type(value) is not list and not isinstance(value, list | tuple):
            raise _type_error(value, what)
        n = len(value)
        if n < low:
            if n == 0:
                raise _Bad(
                    "empty_array",
                    lambda p: (
                        f"Invalid '{p}': empty array. Expected an "
                        f"array with minimum length {low}, but got an empty array instead."
                    ),
                )
            raise _Bad(
                "array_below_min_length",
                lambda p: (
                    f"Invalid '{p}': array too short. "
                    f"Expected an array with minimum length {low}, but got {n} items."
                ),
            )
        if high is not None and n > high:
            raise _Bad(
                "array_above_max_length",
                lambda p: (
                    f"Invalid '{p}': array too long. "
                    f"Expected an array with maximum length {high}, but got {n} items."
                ),
            )
        if open_items:
            return
        i = 0
        try:
            for i, element in enumerate(value):  # noqa: B007 (i is read on error)
                if type(element) is free:
                    continue
                if is_obj and type(element) is not dict and not isinstance(element, dict):
                    raise _type_error(element, item_what)
                item(element)
        except _Bad as bad:
            bad.path.append(i)
            raise

    return check


class _Never:
    """A type no JSON value has: the free type of a node that checks every value."""


def _free_type(node: Node) -> type:
    """The type whose every value ``node`` accepts unchecked (a string for ``Str()``).

    Containers skip calling the check of such a value: most fields of a real request are
    plain strings and booleans, and this keeps validation near the cost of the loop alone.
    """
    if isinstance(node, Str) and not node.min_len and not node.one_of:
        return str
    if isinstance(node, Bool):
        return bool
    if isinstance(node, Obj) and not node.fields and not node.required and node.values is None:
        return dict
    if (
        isinstance(node, Arr)
        and isinstance(node.items, AnyValue)
        and not node.min_items
        and node.max_items is None
    ):
        return list
    if isinstance(node, OneOf):
        for option in node.options:
            free = _free_type(option)
            if free is not _Never:
                return free
    return _Never


def _entry(node: Node) -> tuple[type, Check]:
    if isinstance(node, AnyValue):
        return object, _any(node)  # ``type(x) is object`` is never true: see the loop
    return _free_type(node), _compile(node)


def _obj_check(node: Obj) -> Callable[[dict[str, Any]], None]:
    """The check of an object's content (its type already known to be dict)."""
    fields = {
        name: _entry(sub) for name, sub in node.fields.items() if not isinstance(sub, AnyValue)
    }
    required = tuple((name, _what(node.fields.get(name))) for name in node.required)
    values = _entry(node.values) if node.values is not None else None

    def check(value: dict[str, Any]) -> None:
        for name, what in required:
            if value.get(name) is None:
                raise _missing(value, name, what)
        for name, element in value.items():
            entry = fields.get(name, values)
            if entry is None or element is None:
                continue
            free, sub = entry
            if type(element) is free:
                continue
            try:
                sub(element)
            except _Bad as bad:
                bad.path.append(name)
                raise

    return check


def _what(node: Node | None) -> str:
    if isinstance(node, OneOf) and not node.what:
        return " or ".join(option.what for option in node.options)
    return node.what if node is not None else "a value"


def _missing(value: dict[str, Any], name: str, what: str) -> _Bad:
    if name in value:
        bad = _Bad(
            "invalid_type",
            lambda p: f"Invalid type for '{p}': expected {what}, but got null instead.",
        )
    else:
        bad = _Bad("missing_required_parameter", lambda p: f"Missing required parameter: '{p}'.")
    bad.path.append(name)
    return bad


def _obj(node: Obj) -> Check:
    content, what = _obj_check(node), node.what

    def check(value: Any) -> None:
        if type(value) is not dict and not isinstance(value, dict):
            raise _type_error(value, what)
        content(value)

    return check


def _tagged(node: Tagged) -> Check:
    variants = {tag: _obj_check(sub) for tag, sub in node.variants.items()}
    other, tag, what = _obj_check(node.other), node.tag, node.what
    absent = variants[node.absent] if node.absent is not None else other

    def check(value: Any) -> None:
        if not isinstance(value, dict):
            raise _type_error(value, what)
        kind = value.get(tag)
        if kind is None:
            absent(value)
        else:
            variants.get(kind, other)(value) if isinstance(kind, str) else other(value)

    return check


def _json_types(node: Node) -> tuple[type, ...]:
    if isinstance(node, Str):
        return (str,)
    if isinstance(node, Bool):
        return (bool,)
    if isinstance(node, Int):
        return (int, float) if node.integral_float else (int,)
    if isinstance(node, Num):
        return (int, float)
    if isinstance(node, Arr):
        return (list, tuple)
    if isinstance(node, Obj | Tagged):
        return (dict,)
    raise TypeError(f"OneOf cannot choose by type among {type(node).__name__}")


def _one_of(node: OneOf) -> Check:
    by_type: dict[type, Check] = {}
    for option in node.options:
        check_option = _compile(option)
        for kind in _json_types(option):
            by_type.setdefault(kind, check_option)
    what = _what(node)

    def check(value: Any) -> None:
        option = by_type.get(type(value))
        if option is None:
            if isinstance(value, bool) and bool not in by_type:
                raise _type_error(value, what)  # not an integer, whatever Python thinks
            for kind, candidate in by_type.items():
                if isinstance(value, kind):
                    option = candidate
                    break
            else:
                raise _type_error(value, what)
        option(value)

    return check


_COMPILERS: dict[type, Callable[[Any], Check]] = {
    AnyValue: _any,
    Bool: _bool,
    Str: _str,
    Num: _num,
    Int: _int,
    Arr: _arr,
    Obj: _obj,
    OneOf: _one_of,
    Tagged: _tagged,
}
