"""What to tell the user about YAML that cannot be parsed: where to fix it, in one line.

Also the limits that keep parsing bounded (:data:`MAX_DEPTH`, :class:`DepthLimitedLoader`)
and how messages quote what was written (:func:`shorten`, :func:`quoted`: never a megabyte).
"""

from __future__ import annotations

from typing import Protocol

import yaml

#: Deepest nesting of mappings and lists (a config needs six levels).
MAX_DEPTH = 64


class Mark(Protocol):
    """Where a YAML node or event starts (PyYAML's and libyaml's marks both fit)."""

    line: int
    column: int


def shorten(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text):,} characters)"


def quoted(value: object, limit: int = 60) -> str:
    """``repr(value)``, a long string cut to its first ``limit`` characters (and its length)."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}…({len(value):,} characters)"
    return shorten(repr(value), limit + 20)


def pos(mark: Mark) -> tuple[int, int]:
    """A mark as 1-based (line, column)."""
    return mark.line + 1, mark.column + 1


class TooDeep(Exception):
    """Nesting passed :data:`MAX_DEPTH` at ``mark``."""

    def __init__(self, mark: Mark) -> None:
        super().__init__("nested too deeply")
        self.mark = mark


class DepthLimitedLoader(yaml.SafeLoader):
    """The pure-Python loader, refusing flow nesting past :data:`MAX_DEPTH` as it scans.

    Its scanner checks every open flow level on every token (quadratic in the depth): 5,000
    nested ``[`` would take seconds.  Stopping at the limit keeps it linear.
    """

    def fetch_flow_collection_start(self, TokenClass: type[yaml.Token]) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise TooDeep(self.get_mark())
        super().fetch_flow_collection_start(TokenClass)


def too_deep_at(text: str) -> tuple[int, int]:
    """Where nesting first passes :data:`MAX_DEPTH` (events come one by one: no recursion).

    The pure-Python parser: libyaml's scanner looks far ahead in a flow collection and fails
    at its own depth limit before it yields the event that passes ours.
    """
    depth = 0
    try:
        for event in yaml.parse(text, Loader=DepthLimitedLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH and event.start_mark is not None:
                    return pos(event.start_mark)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except TooDeep as exc:
        return pos(exc.mark)
    except yaml.YAMLError:
        pass
    return 1, 1


_PLAIN_NAMES = {
    "flow mapping": "'{' mapping",
    "flow sequence": "'[' list",
    "quoted scalar": "quoted string",
}


def syntax_message(exc: yaml.MarkedYAMLError) -> tuple[int, int, str]:
    """Where a YAML error is best fixed, and what to tell the user (one line)."""
    line, col, message = _describe_yaml_error(exc)
    kind = (
        "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
    )
    return line, col, f"{kind}: " + " ".join(message.split())


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> tuple[int, int, str]:
    problem = exc.problem or "invalid YAML"
    at, opened = exc.problem_mark, exc.context_mark
    line, col = pos(at) if at is not None else pos(opened) if opened is not None else (1, 1)
    if "'\\t'" in problem:
        return (
            line,
            col,
            ("a tab character; YAML indents with spaces only (replace the tab with spaces)"),
        )
    if problem == "mapping values are not allowed here":
        return (
            line,
            col,
            (f"{problem} (a value containing ': ' must be quoted, or a line is indented wrongly)"),
        )
    context = exc.context or ""
    if problem.startswith("expected <block end>") and opened is not None:
        return (
            line,
            col,
            (
                f"this line is indented wrongly: it lines up with no key of the "
                f"mapping at line {opened.line + 1}, column {opened.column + 1}"
            ),
        )
    if context == "expected a single document in the stream":
        return (
            line,
            col,
            ("a second YAML document starts here ('---'); a config file holds exactly one"),
        )
    if opened is not None and context.startswith(("while parsing a flow", "while scanning a")):
        what = context.removeprefix("while parsing a ").removeprefix("while scanning a ")
        what = _PLAIN_NAMES.get(what, what)
        where = f"{what} opened at line {opened.line + 1}, column {opened.column + 1}"
        if "<stream end>" in problem or "end of stream" in problem:
            # The end of the file is not where the fix goes: point at the opening bracket.
            line, col = pos(opened)
            return line, col, f"this {what} is never closed ({problem})"
        return line, col, f"{problem} (in the {where}; is a closing bracket missing?)"
    if context and opened is not None:
        return (
            line,
            col,
            (f"{problem} ({context} at line {opened.line + 1}, column {opened.column + 1})"),
        )
    return line, col, f"{context} {problem}".strip()
