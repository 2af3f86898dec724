"""``${VAR}`` and ``${VAR:-default}`` in config text: checked, expanded and typed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from routing._yaml_errors import quoted

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

#: libyaml's parser when PyYAML has it (typing a value is parsing a one-line document).
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def reference_problem(text: str) -> str | None:
    """Why the ``${...}`` references in ``text`` cannot be expanded, or None."""
    for match in _ENV.finditer(text):
        default = match.group(2)
        if default is not None and "${" in default:
            return (
                f"nested ${{...}} in {quoted(text)}: the default of ${{{match.group(1)}"
                ":-...} cannot hold another variable; give a plain default"
            )
    if "${" in _ENV.sub("", text):
        return (
            f"{quoted(text)} has a '${{' that starts no variable reference: write "
            "${NAME} or ${NAME:-default} (NAME: letters, digits and _)"
        )
    return None


def plain_scalar(text: str) -> Any:
    """What YAML makes of ``text`` as a plain scalar (a number, true...), or ``text``."""
    try:
        return yaml.load(text, Loader=_Loader)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError):
        return text


def expand(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """``text`` with every reference replaced, and the names of unset variables that have
    no default (replaced by nothing).  The default applies when a variable is unset or empty.
    """
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                missing.append(name)
                return ""
            return default
        return value

    return _ENV.sub(replace, text), missing


def only_reference(text: str) -> bool:
    """True when ``text`` is one reference and nothing else (its value then gets typed)."""
    return _ENV.fullmatch(text) is not None
