"""Stage 1 of config validation: the JSON Schema, every error, best first, located."""

from __future__ import annotations

import datetime
import difflib
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path as FsPath
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match, relevance

from routing._yaml import MarkedDocument, quoted, shorten
from routing.adapters import ADAPTERS, known_kinds
from routing.errors import ConfigIssue

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}


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


def _validator() -> Draft202012Validator:
    return _validator_for(tuple(ADAPTERS), known_kinds())


@cache
def _validator_for(styles: tuple[str, ...], kinds: tuple[str, ...]) -> Draft202012Validator:
    """The schema with ``api`` and ``kind`` listing what is registered (the shipped file
    lists the built-in styles, for editors; a style registered at run time counts too)."""
    schema = load_schema()
    defs = dict(schema.get("$defs", {}))
    if "api" in defs:
        defs["api"] = {**defs["api"], "enum": list(styles)}
    if "kind" in defs:
        defs["kind"] = {**defs["kind"], "enum": [*kinds, "generic"]}
    return Draft202012Validator({**schema, "$defs": defs})


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


def _shown(value: Any) -> str:
    """``repr(value)``, cut short: a message quotes a value, never a megabyte of it."""
    return quoted(value, 60)


#: A number YAML 1.1 reads as text: no dot (1e300) or no sign in the exponent (1.0e300).
_NUMBER_AS_TEXT = re.compile(r"[-+]?(\d[\d_]*)?\.?\d*[eE][-+]?\d+")


def _type_hint(value: Any, kinds: list[str]) -> str:
    """Why YAML may have typed ``value`` other than the user meant, and the fix."""
    if kinds == ["string"] and isinstance(value, bool | int | float | datetime.date):
        return " (write it in quotes to make it text)"
    if (
        {"number", "integer"} & set(kinds)
        and isinstance(value, str)
        and _NUMBER_AS_TEXT.fullmatch(value.strip())
    ):
        return (
            " (YAML reads a number like 1e3 as text: write it with a dot and a signed "
            "exponent, like 1.0e+3, or in full)"
        )
    return ""


def _type_name(value: Any) -> str:
    for name, python in (
        ("true or false", bool),
        ("an integer", int),
        ("a number", float),
        ("a string", str),
        ("a list", list),
        ("a mapping", dict),
        ("a date", datetime.date),
    ):
        if isinstance(value, python):
            return name
    return "null" if value is None else type(value).__name__


def _describe(doc: MarkedDocument, error: ValidationError) -> list[ConfigIssue]:
    path = tuple(error.absolute_path)
    validator = str(error.validator)
    wanted: Any = error.validator_value
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if "propertyNames" in error.absolute_schema_path:
        return [_name_issue(doc, path, str(error.instance), validator)]
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        out = []
        for key in error.instance:
            if key in allowed:
                continue
            hint = _suggest(key, allowed) or (
                f" (allowed: {', '.join(allowed)})" if allowed else ""
            )
            out.append(doc.issue((*path, key), f"unknown key {_shown(key)}{hint}", key=True))
        return out
    if validator == "required":
        return [
            doc.issue(
                path, error.message.replace("is a required property", "is required but missing")
            )
        ]
    if validator == "minProperties":
        return [doc.issue(path, _EMPTY.get(str(_last_key(path)), "must not be empty"))]
    if validator == "minItems":
        return [doc.issue(path, "the list is empty: give at least one item")]
    if validator == "enum":
        choices = [str(c) for c in wanted]
        shown = ", ".join(repr(c) for c in choices)
        hint = _suggest(str(error.instance), choices) if isinstance(error.instance, str) else ""
        return [doc.issue(path, f"{_shown(error.instance)} is not one of {shown}{hint}")]
    if validator == "const":
        hint = (
            " (a number: write it without quotes)"
            if str(error.instance) == str(wanted)
            else (" (the only config format version)" if path == ("version",) else "")
        )
        return [doc.issue(path, f"must be {wanted!r}, not {_shown(error.instance)}{hint}")]
    if validator == "type":
        kinds = [str(t) for t in (wanted if isinstance(wanted, list) else [wanted])]
        expected = " or ".join(_TYPE_NAMES.get(t, t) for t in kinds)
        return [
            doc.issue(
                path,
                f"expected {expected}, got {_type_name(error.instance)} "
                f"{_shown(error.instance)}{_type_hint(error.instance, kinds)}",
            )
        ]
    if validator in ("oneOf", "anyOf") and error.context:
        types = [str(s.get("type")) for s in wanted if isinstance(s, dict) and "type" in s]
        if len(types) == len(wanted) and not any(_matches_type(error.instance, t) for t in types):
            expected = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
            return [
                doc.issue(
                    path,
                    f"expected {expected}, got {_type_name(error.instance)} "
                    f"{_shown(error.instance)}{_type_hint(error.instance, types)}",
                )
            ]
        best = best_match(error.context)
        if best is not None:
            return _describe(doc, best)
    if validator in _BOUNDS:
        return [
            doc.issue(
                path,
                f"{_shown(error.instance)} is out of range: must be {_BOUNDS[validator]} {wanted}",
            )
        ]
    if validator == "minLength" and error.instance == "":
        return [doc.issue(path, "must not be empty")]
    if validator == "maxLength" and isinstance(error.instance, str):
        return [
            doc.issue(
                path,
                f"{_shown(error.instance)} is {len(error.instance):,} characters "
                f"long; at most {wanted} allowed",
            )
        ]
    if validator == "uniqueItems" and isinstance(error.instance, list):
        seen: set[str] = set()
        for item in error.instance:
            if repr(item) in seen:
                return [doc.issue(path, f"the list names {_shown(item)} more than once")]
            seen.add(repr(item))
        return [doc.issue(path, "the list holds an item more than once")]
    if validator == "pattern":
        if _last_key(path) == "api_key_env":
            return [
                doc.issue(
                    path,
                    f"{_shown(error.instance)} is not an environment variable "
                    "name: api_key_env names the variable that holds the key (like "
                    "OPENAI_API_KEY); the key itself never goes in the file",
                )
            ]
        if _last_key(path) == "route" or (len(path) > 1 and _last_key(path[:-1]) == "route"):
            return [
                doc.issue(
                    path,
                    f"{_shown(error.instance)} is not a route: write a provider "
                    "name or provider:instance",
                )
            ]
        return [
            doc.issue(
                path,
                f"{_shown(error.instance)} is not a valid value here: "
                + (schema.get("description") or f"must match {wanted}"),
            )
        ]
    return [doc.issue(path, shorten(error.message, 200))]


_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}

_EMPTY = {
    "providers": "no providers: declare at least one (e.g. ollama with api: ollama)",
    "instances": "no instances: declare at least one (e.g. default: {port: 11434})",
    "match": "match is empty: give model, model_regex or model_exact, or leave match out "
    "for a catch-all rule",
}


def _last_key(path: tuple[str | int, ...]) -> str | int | None:
    return path[-1] if path else None


def _name_issue(
    doc: MarkedDocument, path: tuple[str | int, ...], name: str, validator: str
) -> ConfigIssue:
    what = {"providers": "provider", "instances": "instance"}.get(str(_last_key(path)), "")
    why = (
        "is longer than 64 characters"
        if validator == "maxLength"
        else "use letters, digits, '.', '_' and '-', starting with a letter or digit"
    )
    return doc.issue(
        (*path, name), f"invalid {what} name {_shown(name)}: {why}".replace("  ", " "), key=True
    )


def _matches_type(value: Any, name: str) -> bool:
    return bool(_validator().is_type(value, name))
