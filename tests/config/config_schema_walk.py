"""Walk the config schema: every property as a dotted path (shared by the schema tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).parents[2] / "schemas" / "routing.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text("utf-8"))


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/name``) to the schema it names."""
    while "$ref" in node:
        target: dict[str, Any] = SCHEMA
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def properties(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of the schema as (dotted path, merged schema), depth first.

    Maps of user-chosen names (providers, instances) appear as ``<name>``, list items as ``[]``.
    """
    node = resolve(node)
    for name, child in node.get("properties", {}).items():
        child_path = f"{path}.{name}" if path else name
        yield child_path, resolve(child)
        yield from properties(child, child_path)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "propertyNames" in node:
        yield from properties(extra, f"{path}.<name>")
    items = node.get("items")
    if isinstance(items, dict):
        yield from properties(items, f"{path}[]")
