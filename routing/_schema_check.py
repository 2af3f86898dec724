"""Stage 1 of config validation: the JSON Schema, every error, best first, located."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from pathlib import Path as FsPath
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match, relevance

from routing._yaml import MarkedDocument
from routing.errors import ConfigIssue

_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string",
               "integer": "an integer", "number": "a number", "boolean": "true or false"}


@cache
def load_schema() -> dict[str, Any]:
    """The config's JSON Schema, shipped inside the package (``routing.schemas``)."""
    try:
        text = resources.files("routing.schemas").joinpath("routing.schema.json").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # running from a source tree
        here = FsPath(__file__).resolve().parent.parent / "schemas" / "routing.schema.json"
        text = here.read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema())


def schema_issues(doc: MarkedDocument) -> list[ConfigIssue]:
    """Every schema violation in ``doc``, best first."""
    errors = sorted(_validator().iter_errors(doc.data), key=relevance, reverse=True)
    issues: list[ConfigIssue] = []
    for error in errors:
        issues.extend(_describe(doc, error))
    return issues


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _type_name(value: Any) -> str:
    for name, python in (("true or false", bool), ("an integer", int), ("a number", float),
                         ("a string", str), ("a list", list), ("a mapping", dict)):
        if isinstance(value, python):
            return name
    return "null" if value is None else type(value).__name__


def _describe(doc: MarkedDocument, error: ValidationError) -> list[ConfigIssue]:
    path = tuple(error.absolute_path)
    validator = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        out = []
        for key in error.instance:
            if key in allowed:
                continue
            hint = _suggest(key, allowed) or (f" (allowed: {', '.join(allowed)})" if allowed else "")
            out.append(doc.issue((*path, key), f"unknown key {key!r}{hint}", key=True))
        return out
    if validator == "required":
        return [doc.issue(path, error.message.replace("is a required property",
                                                       "is required but missing"))]
    if validator == "propertyNames":
        name = error.instance
        return [doc.issue((*path, str(name)), f"invalid name {name!r}: use letters, digits, "
                          "'.', '_' and '-', starting with a letter or digit", key=True)]
    if validator == "enum":
        choices = [str(c) for c in error.validator_value]
        shown = ", ".join(repr(c) for c in choices)
        hint = _suggest(str(error.instance), choices) if isinstance(error.instance, str) else ""
        return [doc.issue(path, f"{error.instance!r} is not one of {shown}{hint}")]
    if validator == "const":
        return [doc.issue(path, f"must be {error.validator_value!r}, not {error.instance!r}")]
    if validator == "type":
        wanted = error.validator_value
        names = [_TYPE_NAMES.get(t, t) for t in (wanted if isinstance(wanted, list) else [wanted])]
        return [doc.issue(path, f"expected {' or '.join(names)}, got {_type_name(error.instance)} "
                          f"{error.instance!r}")]
    if validator in ("oneOf", "anyOf") and error.context:
        types = [s.get("type") for s in error.validator_value if isinstance(s, dict)]
        if all(types) and not any(_matches_type(error.instance, t) for t in types):
            names = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
            return [doc.issue(path, f"expected {names}, got {_type_name(error.instance)} "
                              f"{error.instance!r}")]
        best = best_match(error.context)
        if best is not None:
            return _describe(doc, best)
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
                 "exclusiveMaximum": "<"}[str(validator)]
        return [doc.issue(path, f"{error.instance!r} is out of range: must be {bound} "
                          f"{error.validator_value}")]
    if validator == "pattern":
        return [doc.issue(path, f"{error.instance!r} is not a valid value here: "
                          + (schema.get("description") or f"must match {error.validator_value}"))]
    return [doc.issue(path, error.message)]


def _matches_type(value: Any, name: str) -> bool:
    return bool(_validator().is_type(value, name))
