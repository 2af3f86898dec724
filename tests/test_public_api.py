"""The public API: every name `routing` exports exists and is documented."""

from __future__ import annotations

import inspect

import pytest

import routing


def test_all_is_sorted_and_unique() -> None:
    """`routing.__all__` lists each public name once, sorted, so additions stay reviewable."""
    assert len(set(routing.__all__)) == len(routing.__all__)
    assert list(routing.__all__) == sorted(routing.__all__)


@pytest.mark.parametrize("name", routing.__all__)
def test_public_name_exists_and_is_documented(name: str) -> None:
    """Each name in `routing.__all__` is importable from `routing` and has a docstring."""
    obj = getattr(routing, name)
    doc = inspect.getdoc(obj)
    assert doc and doc.strip(), f"routing.{name} has no docstring"
    if inspect.isclass(obj) or inspect.isfunction(obj):
        # The docstring is the object's own, not one inherited from a builtin base.
        assert obj.__doc__ and obj.__doc__.strip(), f"routing.{name} inherits its docstring"


@pytest.mark.parametrize("name", routing.__all__)
def test_public_methods_are_documented(name: str) -> None:
    """Public methods and properties of exported classes (theirs or inherited) have docstrings."""
    obj = getattr(routing, name)
    if not inspect.isclass(obj):
        pytest.skip("not a class")
    members: dict[str, object] = {}
    for base in reversed(obj.__mro__):  # the Router's methods live in its bases too
        if base.__module__.split(".")[0] == "routing":
            members.update(vars(base))
    missing = [
        attr
        for attr, value in members.items()
        if not attr.startswith("_")
        and (inspect.isfunction(value) or isinstance(value, property | classmethod | staticmethod))
        and not inspect.getdoc(getattr(obj, attr))
    ]
    assert not missing, f"routing.{name}: undocumented {missing}"


def test_star_import_matches_all() -> None:
    """`from routing import *` gives exactly `__all__`."""
    namespace: dict[str, object] = {}
    exec("from routing import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(routing.__all__)
