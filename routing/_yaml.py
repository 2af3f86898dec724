"""YAML loading that keeps where every value came from.

PyYAML's ``safe_load`` forgets node positions and silently keeps the last of
two duplicate keys.  Here the node tree is composed, then built by hand so that
each JSON path maps to the line and column of its value (and of its key), and
duplicate keys become located issues instead of lost data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from routing.errors import ConfigIssue

Path = tuple[str | int, ...]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def json_path(path: Path) -> str:
    """Render a path as a JSONPath string: ``$.providers.ollama.instances[0]``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += f".{part}"
        else:
            out += "[" + repr(part) + "]"
    return out


@dataclass(slots=True)
class MarkedDocument:
    """A loaded YAML document: plain data plus the position of every node."""

    file: str
    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of the value at ``path`` (or its key), else its nearest parent."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))

    def issue(self, path: Path, message: str, *, key: bool = False) -> ConfigIssue:
        """A located issue for ``path``."""
        line, col = self.where(path, key=key)
        return ConfigIssue(self.file, line, col, json_path(path), message)


def _pos(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


class _Builder:
    def __init__(self, doc: MarkedDocument, loader: yaml.SafeLoader, environ: dict[str, str]):
        self.doc = doc
        self.loader = loader
        self.environ = environ

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.doc.values[path] = _pos(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # type: ignore[no-untyped-call]
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node)  # type: ignore[no-untyped-call]
                if not isinstance(key, str):
                    key = str(key)
                child = (*path, key)
                if key in out:
                    first_line, _ = self.doc.keys[child]
                    line, col = _pos(key_node.start_mark)
                    self.doc.issues.append(
                        ConfigIssue(
                            self.doc.file, line, col, json_path(child),
                            f"duplicate key {key!r} (first defined on line {first_line}); "
                            "YAML would silently keep only the last one",
                        )
                    )
                    continue
                self.doc.keys[child] = _pos(key_node.start_mark)
                out[key] = self.build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self.loader.construct_object(node)  # type: ignore[no-untyped-call]
        if isinstance(value, str) and "$" in value:
            return self._interpolate(value, node, path)
        return value

    def _interpolate(self, text: str, node: yaml.ScalarNode, path: Path) -> Any:
        missing: list[str] = []

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = self.environ.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    missing.append(name)
                    return ""
                return default
            return value

        result = _ENV.sub(replace, text)
        for name in missing:
            self.doc.issues.append(
                self.doc.issue(
                    path,
                    f"environment variable {name} is not set "
                    f"(write ${{{name}:-default}} to give a default)",
                )
            )
        if _ENV.fullmatch(text):
            # A scalar that is only a variable gets YAML's typing: port: "${PORT:-8080}"
            # is a number (flow mappings need the quotes, so quoting cannot mean "string").
            try:
                typed = yaml.safe_load(result)
            except yaml.YAMLError:
                return result
            if isinstance(typed, int | float | bool):
                return typed
        return result


def load_marked(
    text: str, file: str, environ: dict[str, str] | None = None
) -> MarkedDocument:
    """Parse ``text`` into a :class:`MarkedDocument`; YAML errors become located issues."""
    doc = MarkedDocument(file=file, data=None)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            doc.issues.append(
                ConfigIssue(file, 1, 1, "$", "the file is empty: expected a mapping with "
                            "'version' and 'providers'")
            )
            return doc
        doc.data = _Builder(doc, loader, dict(os.environ if environ is None else environ)).build(
            node, ()
        )
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark is not None else (1, 1)
        problem = exc.problem or "invalid YAML"
        if "\\t" in problem or "'\\t'" in problem or "tab" in problem:
            problem += " (YAML does not allow tabs for indentation; use spaces)"
        context = f" {exc.context}" if exc.context else ""
        doc.issues.append(ConfigIssue(file, line, col, "$", f"YAML syntax error:{context} {problem}"
                                      .replace(":  ", ": ")))
    except yaml.YAMLError as exc:
        doc.issues.append(ConfigIssue(file, 1, 1, "$", f"YAML error: {exc}"))
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]
    return doc
