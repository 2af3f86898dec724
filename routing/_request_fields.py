"""The one validator that walks request descriptions: :func:`compile_spec` and its checks.

An API's request is described once, as a tree of the small frozen nodes of
:mod:`routing._request_nodes` (see :mod:`routing._request_specs` for every door's
description; the nodes are importable from here too). :func:`compile_spec` turns a
description into a plain function, once, at import; calling it on a parsed body raises
:class:`~routing.errors.InvalidRequest` naming the first field of the wrong type or range by
its path (``messages[2].content``, ``temperature``), in the words and codes of OpenAI's own
errors, and returns None otherwise. It never changes the body.

Rules every node follows:

- Fields a description does not name are accepted untouched (never rejected, never
  dropped): an API grows faster than our description of it.
- An optional field that is ``null`` counts as absent (as OpenAI and Ollama both treat it).
- Numbers are finite: ``NaN`` and infinities never pass, whatever the bounds.
- Booleans are not numbers, and integers are not booleans (``True`` is no ``1``).
- Arrays may be lists or tuples (library callers pass tuples), objects must be dicts.

The compiled checks raise a :class:`~routing._request_errors.BadValue` (the errors' words
live in :mod:`routing._request_errors`) that containers complete with their key on the way
out, so a valid body, the common case, builds no path and no message at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from routing._request_errors import (
    BadValue,
    missing_error,
    param_path,
    range_error,
    show,
    type_error,
)
from routing._request_nodes import (
    AnyValue,
    Arr,
    Bool,
    Int,
    Node,
    Num,
    Obj,
    OneOf,
    Str,
    Tagged,
)
from routing.errors import InvalidRequest

# The nodes stay importable from here, where they were defined first.
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

Check: TypeAlias = Callable[[Any], None]


def compile_spec(spec: Node) -> Callable[[Any], None]:
    """A function checking a body against ``spec``: None, or :class:`InvalidRequest`."""
    check = _compile(spec)

    def validate(body: Any) -> None:
        try:
            check(body)
        except BadValue as bad:
            param = param_path(bad.path)
            raise InvalidRequest(bad.message(param), param=param, code=bad.code) from None

    return validate


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
            raise type_error(value, what)

    return check


def _str(node: Str) -> Check:
    what, min_len = node.what, node.min_len
    allowed = frozenset(node.one_of)

    def check(value: Any) -> None:
        if not isinstance(value, str):
            raise type_error(value, what)
        if len(value) < min_len:
            raise BadValue(
                "empty_string",
                lambda p: (
                    f"Invalid '{p}': empty string. Expected a "
                    f"string with minimum length {min_len}, but got an empty string instead."
                ),
            )
        if allowed and value not in allowed:
            choices = ", ".join(f"'{c}'" for c in node.one_of)
            raise BadValue(
                "invalid_value",
                lambda p: (
                    f"Invalid value for '{p}': expected one of "
                    f"{choices}, but got {show(value)} instead."
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
            raise type_error(value, what)
        if not lo <= value <= hi:  # also false for NaN
            raise range_error(value, lo, hi, integer=False)

    return check


def _int(node: Int) -> Check:
    lo, hi, what, integral = node.lo, node.hi, node.what, node.integral_float

    def check(value: Any) -> None:
        if type(value) is not int:
            if integral and type(value) is float and value.is_integer():
                pass
            elif isinstance(value, bool) or not isinstance(value, int):
                raise type_error(value, what)
        if not lo <= value <= hi:
            raise range_error(value, lo, hi, integer=True)

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
            raise type_error(value, what)
        n = len(value)
        if n < low:
            if n == 0:
                raise BadValue(
                    "empty_array",
                    lambda p: (
                        f"Invalid '{p}': empty array. Expected an "
                        f"array with minimum length {low}, but got an empty array instead."
                    ),
                )
            raise BadValue(
                "array_below_min_length",
                lambda p: (
                    f"Invalid '{p}': array too short. "
                    f"Expected an array with minimum length {low}, but got {n} items."
                ),
            )
        if high is not None and n > high:
            raise BadValue(
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
                    raise type_error(element, item_what)
                item(element)
        except BadValue as bad:
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
                raise missing_error(value, name, what)
        for name, element in value.items():
            entry = fields.get(name, values)
            if entry is None or element is None:
                continue
            free, sub = entry
            if type(element) is free:
                continue
            try:
                sub(element)
            except BadValue as bad:
                bad.path.append(name)
                raise

    return check


def _what(node: Node | None) -> str:
    if isinstance(node, OneOf) and not node.what:
        return " or ".join(option.what for option in node.options)
    return node.what if node is not None else "a value"


def _obj(node: Obj) -> Check:
    content, what = _obj_check(node), node.what

    def check(value: Any) -> None:
        if type(value) is not dict and not isinstance(value, dict):
            raise type_error(value, what)
        content(value)

    return check


def _tagged(node: Tagged) -> Check:
    variants = {tag: _obj_check(sub) for tag, sub in node.variants.items()}
    other, tag, what = _obj_check(node.other), node.tag, node.what
    absent = variants[node.absent] if node.absent is not None else other

    def check(value: Any) -> None:
        if not isinstance(value, dict):
            raise type_error(value, what)
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
                raise type_error(value, what)  # not an integer, whatever Python thinks
            for kind, candidate in by_type.items():
                if isinstance(value, kind):
                    option = candidate
                    break
            else:
                raise type_error(value, what)
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
