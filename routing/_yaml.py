"""YAML loading that keeps where every value came from, and refuses what is not config.

PyYAML's ``safe_load`` forgets node positions and silently keeps the last of
two duplicate keys.  Here the node tree is composed, then built by hand so that
each JSON path maps to the line and column of its value (and of its key), and
duplicate keys become located issues instead of lost data.

Building is total: whatever the text, :func:`load_marked` returns a document
whose ``issues`` say, located, what cannot be a config value: a key that is not
text, a tag other than YAML's plain ones, an integer too large for any setting
(Python's ``int()`` refuses over 4,300 digits), NaN or infinity, control
characters or lone surrogates in text, a malformed or nested ``${...}``, and
documents nested, aliased or repeated beyond any config's size.  Values under
top-level ``x-`` keys (ignored by routing) are checked where they are used.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from routing._env import expand, only_reference, plain_scalar, reference_problem
from routing._yaml_errors import (
    MAX_DEPTH,
    DepthLimitedLoader,
    TooDeep,
    pos,
    quoted,
    shorten,
    syntax_message,
    too_deep_at,
)
from routing.errors import ConfigIssue

Path = tuple[str | int, ...]

#: Most values a document may expand to; YAML aliases can make a small file huge
#: (the "billion laughs"), and a config has a few hundred values at most.
MAX_VALUES = 100_000
#: Largest integer magnitude a value may have: no setting comes near 2**63.
_MAX_INT = 2**63
#: Keys longer than this are shortened in JSON paths.
_SHOWN_KEY = 200

_CORE = "tag:yaml.org,2002:"
_MERGE_TAG = _CORE + "merge"
#: The tags of plain data (what JSON has, plus dates, which the schema then refuses where
#: text is wanted); !!binary, !!set, !!omap and application tags build nothing a config uses.
_PLAIN_TAGS = {
    _CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "merge", "timestamp")
}

_TOO_DEEP = f"the document is nested more than {MAX_DEPTH} levels deep; a config needs a handful"

_TAG_NAMES = {
    _CORE + "int": "an integer",
    _CORE + "float": "a number",
    _CORE + "bool": "true or false",
    _CORE + "timestamp": "a date",
    _CORE + "null": "null",
}

#: Text no config value needs and a terminal or log line should never receive: C0/C1 control
#: characters, line and paragraph separators, bidirectional overrides ("Trojan Source").
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")

#: libyaml's parser when PyYAML has it: ~10x faster on big files, same nodes and marks.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = ["MAX_VALUES", "MarkedDocument", "json_path", "load_marked", "quoted", "shorten"]


def json_path(path: Path) -> str:
    """Render a path as a JSONPath string: ``$.providers.ollama.instances[0]``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part) and len(part) <= _SHOWN_KEY:
            out += f".{part}"
        elif len(part) > _SHOWN_KEY:
            out += "[" + repr(part[:60])[:-1] + "…" + repr(part)[-1] + "]"
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
    #: JSON paths whose value was already reported while loading (an unset variable, NaN,
    #: a control character...): later complaints about them would only repeat it.
    reported: set[str] = field(default_factory=set)

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


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


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
        self.built: set[int] = set()  # distinct nodes: fewer than values built means aliases
        self.active: set[int] = set()  # nodes being built: an alias back into one is a cycle
        #: Mapping node -> index of its first written key once merges are flattened (an
        #: aliased mapping is built once per use, but flattened only the first time).
        self.flattened: dict[int, int] = {}

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        self.built.add(id(node))
        if self.count > MAX_VALUES:
            why = " (YAML aliases repeated too often?)" if len(self.built) < self.count else ""
            raise _TooBig(
                node,
                f"the document holds more than {MAX_VALUES:,} values; a config "
                f"has a few hundred{why}",
            )
        if id(node) in self.active:
            raise _TooBig(node, "recursive YAML alias: a value contains itself")
        if len(path) > MAX_DEPTH:
            raise _TooBig(node, _TOO_DEEP)
        self.doc.values[path] = pos(node.start_mark)
        if node.tag not in _PLAIN_TAGS:
            return self._refuse(
                path,
                f"unsupported YAML tag {_short_tag(node.tag)!r}: a config "
                "holds plain text, numbers, true/false, lists and mappings",
            )
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self.active.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self.active.discard(id(node))
        return self._scalar(node, path)

    def _refuse(self, path: Path, message: str, *, key: bool = False) -> None:
        self.doc.issues.append(self.doc.issue(path, message, key=key))
        self.doc.reported.add(json_path(path))

    def _checked(self, path: Path) -> bool:
        """Whether values at ``path`` are used by routing (``x-`` keys are not)."""
        return not (path and isinstance(path[0], str) and path[0].startswith("x-"))

    def _construct(self, node: yaml.Node, path: Path, *, key: bool = False) -> tuple[bool, Any]:
        """(True, value) for a scalar YAML can build, else (False, None) and a located issue."""
        try:
            return True, self.loader.construct_object(node)
        except Exception as exc:  # a constructor fails in its own ways (!!timestamp soon)
            written = str(node.value)
            digits = sum(ch.isdigit() for ch in written)
            if node.tag == _CORE + "int" and digits > 1000:
                message = (
                    f"the integer {shorten(written)} is far too large ({digits:,} "
                    "digits); no setting needs more than a few"
                )
            else:
                kind = _TAG_NAMES.get(node.tag, _short_tag(node.tag))
                reason = (
                    getattr(exc, "problem", None)
                    if isinstance(exc, yaml.YAMLError)
                    else exc
                    if isinstance(exc, ValueError)
                    else None
                ) or "not in that form"
                message = (
                    f"{quoted(written)} cannot be read as {kind}: {reason} (write it "
                    "in quotes to make it text)"
                )
            self._refuse(path, message, key=key)
            return False, None

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        ok, value = self._construct(node, path)
        if not ok:
            return None
        if isinstance(value, str):
            value = self._text(value, path)
            if value is not None and "$" in value:
                return self._interpolate(value, node, path)
            return value
        return self._number(value, str(node.value), path)

    def _number(self, value: Any, written: str, path: Path, source: str = "") -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and not -_MAX_INT < value < _MAX_INT:
            self._refuse(
                path,
                f"the integer {shorten(written)} is far too large{source}; no "
                "setting needs more than a few digits",
            )
            return None
        if isinstance(value, float) and not math.isfinite(value) and self._checked(path):
            what = "NaN" if math.isnan(value) else "infinite"
            self._refuse(
                path,
                f"{quoted(written)} is {what}{source}: give a finite number "
                "(NaN and infinity would disable the limit they set)",
            )
        return value

    def _text(self, value: str, path: Path, *, key: bool = False, source: str = "") -> str | None:
        """``value`` with surrogate pairs joined; None (and an issue) for unprintable text."""
        if not self._checked(path):
            return value
        if _SURROGATE.search(value):
            try:  # "\ud83d\ude00" (a JSON-style escape) is one character written as a pair
                value = value.encode("utf-16", "surrogatepass").decode("utf-16")
            except UnicodeDecodeError:
                lone = _SURROGATE.search(value)
                assert lone is not None
                self._refuse(
                    path,
                    f"contains U+{ord(lone.group()):04X}, a lone surrogate, "
                    f"which is not Unicode text{source}: write the character itself",
                    key=key,
                )
                return None
        bad = _UNPRINTABLE.search(value)
        if bad is not None:
            self._refuse(
                path,
                f"contains the control character U+{ord(bad.group()):04X}"
                f"{source}: names, addresses and patterns are one line of printable "
                "text",
                key=key,
            )
            return None
        return value

    def _key(self, key_node: yaml.Node, path: Path) -> str | None:
        """The text of a mapping key, or None (and an issue) when the key is not text."""
        if key_node.tag not in _PLAIN_TAGS:
            line, col = pos(key_node.start_mark)
            self.doc.issues.append(
                ConfigIssue(
                    self.doc.file,
                    line,
                    col,
                    json_path(path),
                    f"unsupported YAML tag "
                    f"{_short_tag(key_node.tag)!r} on a key: a key is plain text",
                )
            )
            return None
        if not isinstance(key_node, yaml.ScalarNode):
            what = "a mapping" if isinstance(key_node, yaml.MappingNode) else "a list"
            line, col = pos(key_node.start_mark)
            self.doc.issues.append(
                ConfigIssue(
                    self.doc.file, line, col, json_path(path), f"a key must be text, not {what}"
                )
            )
            return None
        ok, key = self._construct(key_node, path)
        if not ok:
            return None
        if not isinstance(key, str):
            written = shorten(str(key_node.value))
            line, col = pos(key_node.start_mark)
            kind = (
                "null"
                if key is None
                else "true or false"
                if isinstance(key, bool)
                else ("a number" if isinstance(key, int | float) else type(key).__name__)
            )
            self.doc.issues.append(
                ConfigIssue(
                    self.doc.file,
                    line,
                    col,
                    json_path((*path, written)),
                    f"the key {quoted(str(key_node.value))} is read by YAML as {kind}, not text: "
                    f"write it in quotes ('{written}')",
                )
            )
            return None
        self.doc.keys[(*path, key)] = pos(key_node.start_mark)
        return self._text(key, (*path, key), key=True)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        # Keys written in this mapping may override keys merged in with `<<: *anchor`
        # (that is what merging is for); only a key written twice here is a mistake.
        first_written = self.flattened.get(id(node))
        if first_written is None:
            written = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
            try:
                self.loader.flatten_mapping(node)
            except RecursionError:
                raise _TooBig(node, "recursive YAML merge: a mapping merges itself") from None
            first_written = self.flattened[id(node)] = len(node.value) - written
        # The value of each key: the first written one, else the last merged one (a later
        # merge wins, as in YAML); in the order keys first appear (declaration order).
        winners: dict[str, tuple[int, yaml.Node, yaml.Node]] = {}
        for index, (key_node, value_node) in enumerate(node.value):
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in winners and index >= first_written:
                first = winners[key]
                if first[0] >= first_written:
                    line, col = pos(key_node.start_mark)
                    first_line, _ = pos(first[1].start_mark)
                    self.doc.issues.append(
                        ConfigIssue(
                            self.doc.file,
                            line,
                            col,
                            json_path((*path, key)),
                            f"duplicate key {quoted(key)} (first defined on line "
                            f"{first_line}); YAML would silently keep only the last one",
                        )
                    )
                    continue
            winners[key] = (index, key_node, value_node)
        out: dict[str, Any] = {}
        for key, (_, key_node, value_node) in winners.items():
            child = (*path, key)
            self.doc.keys[child] = pos(key_node.start_mark)
            out[key] = self.build(value_node, child)
        return out

    def _interpolate(self, text: str, node: yaml.Node, path: Path) -> Any:
        problem = reference_problem(text)
        if problem is not None:
            self._refuse(path, problem)
            return text
        result, missing = expand(text, self.environ)
        if result != text:
            self.doc.interpolated[json_path(path)] = text
        for name in missing:
            self._refuse(
                path,
                f"environment variable {name} is not set "
                f"(write ${{{name}:-default}} to give a default)",
            )
        if missing:
            return result
        source = f" (from {shorten(text)})"
        checked = self._text(result, path, source=source)
        if checked is None:
            return result
        if only_reference(text):
            # A scalar that is only a variable gets YAML's typing: port: "${PORT:-8080}"
            # is a number (flow mappings need the quotes, so quoting cannot mean "string").
            typed = plain_scalar(checked)
            if isinstance(typed, int | float | bool):
                return self._number(typed, checked, path, source)
        return checked


def load_marked(text: str, file: str, environ: dict[str, str] | None = None) -> MarkedDocument:
    """Parse ``text`` into a :class:`MarkedDocument`; YAML errors become located issues."""
    doc = MarkedDocument(file=file, data=None)
    loader: Any = None
    try:
        loader, node = _compose(text)
        if node is None:
            what = "holds only comments" if text.strip() else "is empty"
            doc.issues.append(
                ConfigIssue(
                    file,
                    1,
                    1,
                    "$",
                    f"the file {what}: expected a mapping with 'version' and 'providers'",
                )
            )
            return doc
        builder = _Builder(doc, loader, dict(os.environ if environ is None else environ))
        doc.data = builder.build(node, ())
        if doc.data is None and not doc.issues:
            line, col = pos(node.start_mark) if node.value else (1, 1)
            said = f"only {node.value!r}, which YAML reads as null" if node.value else "empty"
            doc.issues.append(
                ConfigIssue(
                    file,
                    line,
                    col,
                    "$",
                    f"the document is {said}: expected a mapping with 'version' and 'providers'",
                )
            )
    except _TooBig as exc:
        line, col = pos(exc.node.start_mark)
        doc.data = None
        doc.issues.append(ConfigIssue(file, line, col, "$", exc.message))
    except TooDeep as exc:
        line, col = pos(exc.mark)
        doc.data = None
        doc.issues.append(ConfigIssue(file, line, col, "$", _TOO_DEEP))
    except yaml.MarkedYAMLError as exc:
        line, col, message = syntax_message(exc)
        doc.data = None
        doc.issues.append(ConfigIssue(file, line, col, "$", message))
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        doc.data = None
        doc.issues.append(
            ConfigIssue(
                file,
                line,
                col,
                "$",
                f"the character U+{exc.character:04X}"
                " is not allowed in a YAML file (a control character); "
                "remove it"
                if isinstance(exc.character, int)
                else f"YAML error: {exc.reason}",
            )
        )
    except yaml.YAMLError as exc:
        doc.data = None
        doc.issues.append(ConfigIssue(file, 1, 1, "$", "YAML error: " + " ".join(str(exc).split())))
    except RecursionError:
        doc.data = None
        line, col = too_deep_at(text)
        doc.issues.append(ConfigIssue(file, line, col, "$", _TOO_DEEP))
    finally:
        if loader is not None:
            loader.dispose()
    doc.issues.sort(key=lambda issue: (issue.line, issue.column))
    return doc


def _compose(text: str) -> tuple[Any, yaml.Node | None]:
    """The node tree of ``text``, and the loader that holds it (the caller disposes of it)."""
    loader = _Loader(text)
    try:
        return loader, loader.get_single_node()
    except (yaml.MarkedYAMLError, yaml.reader.ReaderError):
        loader.dispose()
        if _Loader is yaml.SafeLoader:
            raise
    # libyaml's messages are terse ("did not find expected key"), and its reader counts
    # bytes, not characters: the pure-Python parser names the problem and where it started,
    # and broken files are small: parse again.
    slow = DepthLimitedLoader(text)
    try:
        return slow, slow.get_single_node()
    except BaseException:
        slow.dispose()
        raise
