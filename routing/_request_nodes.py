"""The nodes request descriptions are built from: small frozen dataclasses, one per JSON shape.

A description is a tree of these (:mod:`routing._request_specs` holds every door's);
:func:`routing._request_fields.compile_spec` turns one into the function that checks a body,
following the rules stated there. The nodes hold no behaviour of their own.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

__all__ = ["AnyValue", "Arr", "Bool", "Int", "Node", "Num", "Obj", "OneOf", "Str", "Tagged"]

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
