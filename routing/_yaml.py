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
    #: JSON path -> the text as written, for values that came from ``${VAR}``.
    interpolated: dict[str, str] = field(default_factory=dict)
    #: JSON paths of values built from variables that are not set (already reported).
    unset: set[str] = field(default_factory=set)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of the value at ``path`` (or its key), else of a parent."""
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


#: Most values a document may expand to; YAML aliases can make a small file huge
#: (the "billion laughs"), and a config has a few hundred values at most.
MAX_VALUES = 100_000

_MERGE_TAG = "tag:yaml.org,2002:merge"

#: libyaml's parser when PyYAML has it: ~10x faster on big files, same nodes and marks.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TooBig(Exception):
    """Raised inside the builder to stop at the first runaway expansion."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


class _Builder:
    def __init__(self, doc: MarkedDocument, loader: Any, environ: dict[str, str]):
        self.doc = doc
        self.loader = loader
        self.environ = environ
        self.count = 0
        self.active: set[int] = set()  # nodes being built: an alias back into one is a cycle

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _TooBig(node, f"the document holds more than {MAX_VALUES:,} values; a config "
                          "has a few hundred (YAML aliases repeated too often?)")
        if id(node) in self.active:
            raise _TooBig(node, "recursive YAML alias: a value contains itself")
        self.doc.values[path] = _pos(node.start_mark)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self.active.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self.active.discard(id(node))
        value = self.loader.construct_object(node)
        if isinstance(value, str) and "$" in value and isinstance(node, yaml.ScalarNode):
            return self._interpolate(value, node, path)
        return value

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        # Keys written in this mapping may override keys merged in with `<<: *anchor`
        # (that is what merging is for); only a key written twice here is a mistake.
        written = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        self.loader.flatten_mapping(node)
        first_written = len(node.value) - written
        out: dict[str, Any] = {}
        from_merge: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key)
            child = (*path, key)
            merged = index < first_written
            if key in out:
                if not merged and key not in from_merge:
                    first_line, _ = self.doc.keys[child]
                    line, col = _pos(key_node.start_mark)
                    self.doc.issues.append(ConfigIssue(
                        self.doc.file, line, col, json_path(child),
                        f"duplicate key {key!r} (first defined on line {first_line}); "
                        "YAML would silently keep only the last one"))
                    continue
                self._forget(child)  # a later merge, or a written key, overrides a merged one
            if merged:
                from_merge.add(key)
            else:
                from_merge.discard(key)
            self.doc.keys[child] = _pos(key_node.start_mark)
            out[key] = self.build(value_node, child)
        return out

    def _forget(self, path: Path) -> None:
        """Drop the positions of a merged-in value that a written key overrides."""
        n = len(path)
        for table in (self.doc.values, self.doc.keys):
            for stale in [p for p in table if p[:n] == path]:
                del table[stale]
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
        if result != text:
            self.doc.interpolated[json_path(path)] = text
        if missing:
            self.doc.unset.add(json_path(path))
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
    loader: Any = None
    try:
        loader, node = _compose(text)
        if node is None:
            what = "holds only comments" if text.strip() else "is empty"
            doc.issues.append(ConfigIssue(file, 1, 1, "$", f"the file {what}: expected a "
                                          "mapping with 'version' and 'providers'"))
            return doc
        builder = _Builder(doc, loader, dict(os.environ if environ is None else environ))
        doc.data = builder.build(node, ())
    except _TooBig as exc:
        line, col = _pos(exc.node.start_mark)
        doc.data = None
        doc.issues.append(ConfigIssue(file, line, col, "$", exc.message))
    except yaml.MarkedYAMLError as exc:
        line, col, message = _syntax_message(exc)
        doc.issues.append(ConfigIssue(file, line, col, "$", f"YAML syntax error: {message}"))
    except yaml.YAMLError as exc:
        doc.issues.append(ConfigIssue(file, 1, 1, "$", f"YAML error: {exc}"))
    except RecursionError:
        doc.data = None
        doc.issues.append(ConfigIssue(file, 1, 1, "$", "the document is nested too deeply "
                                      "to be a config"))
    finally:
        if loader is not None:
            loader.dispose()
    return doc


def _compose(text: str) -> tuple[Any, yaml.Node | None]:
    """The node tree of ``text``, and the loader that holds it (the caller disposes of it)."""
    loader = _Loader(text)
    try:
        return loader, loader.get_single_node()
    except yaml.MarkedYAMLError:
        loader.dispose()
        if _Loader is yaml.SafeLoader:
            raise
    # libyaml's messages are terse ("did not find expected key"); the pure-Python parser
    # names the problem and where it started, and broken files are small: parse again.
    slow = yaml.SafeLoader(text)
    try:
        return slow, slow.get_single_node()
    except BaseException:
        slow.dispose()
        raise


_PLAIN_NAMES = {"flow mapping": "'{' mapping", "flow sequence": "'[' list",
                "quoted scalar": "quoted string"}


def _syntax_message(exc: yaml.MarkedYAMLError) -> tuple[int, int, str]:
    """Where a YAML syntax error is best fixed, and what to tell the user."""
    problem = exc.problem or "invalid YAML"
    at, opened = exc.problem_mark, exc.context_mark
    line, col = _pos(at) if at is not None else _pos(opened) if opened is not None else (1, 1)
    if "'\\t'" in problem:
        return line, col, ("a tab character; YAML indents with spaces only (replace the tab "
                           "with spaces)")
    if problem == "mapping values are not allowed here":
        return line, col, (f"{problem} (a value containing ': ' must be quoted, "
                           "or a line is indented wrongly)")
    context = exc.context or ""
    if problem.startswith("expected <block end>") and opened is not None:
        return line, col, (f"this line is indented wrongly: it lines up with no key of the "
                           f"mapping at line {opened.line + 1}, column {opened.column + 1}")
    if context == "expected a single document in the stream":
        return line, col, ("a second YAML document starts here ('---'); a config file holds "
                           "exactly one")
    if opened is not None and context.startswith(("while parsing a flow", "while scanning a")):
        what = context.removeprefix("while parsing a ").removeprefix("while scanning a ")
        what = _PLAIN_NAMES.get(what, what)
        where = f"{what} opened at line {opened.line + 1}, column {opened.column + 1}"
        if "<stream end>" in problem or "end of stream" in problem:
            # The end of the file is not where the fix goes: point at the opening bracket.
            line, col = _pos(opened)
            return line, col, f"this {what} is never closed ({problem})"
        return line, col, f"{problem} (in the {where}; is a closing bracket missing?)"
    if context and opened is not None:
        return line, col, (f"{problem} ({context} at line {opened.line + 1}, "
                           f"column {opened.column + 1})")
    return line, col, f"{context} {problem}".strip()
