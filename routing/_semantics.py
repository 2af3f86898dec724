"""Stage 2 of config validation: what the schema cannot see.

References between rules and providers, addresses, unique host:port, and
regular expressions that compile and cannot backtrack catastrophically.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from routing._urls import AddressError, normalise_url
from routing._yaml import MarkedDocument, json_path
from routing.adapters import get_adapter, known_kinds
from routing.errors import ConfigIssue

#: Longest regex a rule may hold.
MAX_REGEX_LENGTH = 256


def instance_url(spec: dict[str, Any], *, api: str, kind: str, echo: bool = True) -> str:
    """The canonical root URL of an instance (no trailing ``/v1`` for the openai style).

    ``echo=False`` keeps the address out of error messages (it came from the environment).
    """
    if "url" in spec:
        url = normalise_url(str(spec["url"]), kind=kind, echo=echo)
    else:
        host = str(spec.get("host", "127.0.0.1"))
        if "/" in host:
            raise AddressError(
                "host is a host name or address, like gpu-box.lan or 10.0.0.5; "
                "give a whole address (scheme, path) in url instead"
            )
        scheme = spec.get("scheme", "http")
        url = normalise_url(
            f"{scheme}://{_bracket(host)}:{int(spec['port'])}", kind=kind, echo=echo
        )
    strip = get_adapter(api).strip_suffix
    if strip and url.endswith(strip):
        url = url[: -len(strip)]
    return url


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def check_meaning(doc: MarkedDocument) -> list[ConfigIssue]:
    """Every meaning problem of a schema-valid document, in document order."""
    data: dict[str, Any] = doc.data
    issues = list(_check_instances(doc, data))
    issues.extend(_check_rules(doc, data))
    return sorted(issues, key=lambda i: (i.line, i.column))


def _check_instances(doc: MarkedDocument, data: dict[str, Any]) -> Iterator[ConfigIssue]:
    seen: dict[tuple[str, str | None], str] = {}
    for pname, provider in data["providers"].items():
        kind = provider.get("kind") or (pname if pname in known_kinds() else "generic")
        for iname, spec in provider["instances"].items():
            path = ("providers", pname, "instances", iname)
            if "url" in spec:
                extra = [k for k in ("host", "port", "scheme") if k in spec]
                if extra:
                    yield doc.issue(
                        (*path, extra[0]), f"give either url or {extra[0]}, not both", key=True
                    )
                    continue
            elif "port" not in spec:
                yield doc.issue(path, "an instance needs url, or port (and optionally host)")
                continue
            field = "url" if "url" in spec else "host" if "host" in spec else "port"
            echo = json_path((*path, field)) not in doc.interpolated
            try:
                url = instance_url(spec, api=provider["api"], kind=kind, echo=echo)
            except AddressError as exc:
                yield doc.issue((*path, field), str(exc))
                continue
            # One server is one instance: the same host:port twice would probe, count and
            # break the same server twice. Remote APIs are the exception when each instance
            # uses its own key (two accounts of one provider).
            where = urlsplit(url).netloc
            if (where, spec.get("api_key_env")) in seen:
                other = seen[where, spec.get("api_key_env")]
                yield doc.issue(
                    path,
                    f"{pname}:{iname} has the same address ({where}) as "
                    f"{other}; two instances cannot share host:port",
                )
            else:
                seen[where, spec.get("api_key_env")] = f"{pname}:{iname}"


def _check_rules(doc: MarkedDocument, data: dict[str, Any]) -> Iterator[ConfigIssue]:
    providers: dict[str, Any] = data["providers"]
    catch_all: int | None = None
    for index, rule in enumerate(data.get("rules", [])):
        path: tuple[str | int, ...] = ("rules", index)
        if catch_all is not None:
            yield doc.issue(
                path,
                f"this rule can never match: rules[{catch_all}] above it has "
                "no match and catches every request",
            )
        match = rule.get("match")
        if not match and catch_all is None:
            catch_all = index
        route = rule["route"]
        targets = [route] if isinstance(route, str) else route
        for t_index, target in enumerate(targets):
            t_path = (*path, "route") if isinstance(route, str) else (*path, "route", t_index)
            problem = _route_problem(target, providers)
            if problem:
                yield doc.issue(t_path, problem)
        for key in ("model_regex",):
            patterns = (match or {}).get(key)
            if patterns is None:
                continue
            items = [patterns] if isinstance(patterns, str) else patterns
            for p_index, pattern in enumerate(items):
                p_path = (
                    (*path, "match", key)
                    if isinstance(patterns, str)
                    else (*path, "match", key, p_index)
                )
                problem = regex_problem(pattern)
                if problem:
                    yield doc.issue(p_path, problem)


def _route_problem(target: str, providers: dict[str, Any]) -> str | None:
    pname, _, iname = target.partition(":")
    if pname not in providers:
        known = ", ".join(providers)
        close = difflib.get_close_matches(pname, list(providers), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"route names unknown provider {pname!r} (known: {known}){hint}"
    instances = providers[pname]["instances"]
    if iname and iname not in instances:
        known = ", ".join(f"{pname}:{i}" for i in instances)
        close = difflib.get_close_matches(iname, list(instances), n=1, cutoff=0.6)
        hint = f"; did you mean '{pname}:{close[0]}'?" if close else ""
        return f"route names unknown instance {target!r} (known: {known}){hint}"
    return None


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` is refused as a rule regex, or None when it is fine."""
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"regex is {len(pattern)} characters long; at most {MAX_REGEX_LENGTH} allowed"
    try:
        re.compile(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        return f"invalid regex: {exc.msg}{where}"
    except (OverflowError, RecursionError) as exc:  # a{99999999999}: re raises these too
        return f"invalid regex: {exc}"
    if _nested_unbounded(pattern):
        return (
            "regex risks catastrophic backtracking: an unbounded repeat inside another "
            "repeat (like (a+)+); rewrite it without the nested quantifier"
        )
    return None


def _nested_unbounded(pattern: str) -> bool:
    """True when an unbounded repeat sits inside another repeat (star height > 1).

    The one shape let through is a repeat of ``X+`` plus a required separator that X
    cannot match, like ``\\d+(\\.\\d+)*`` or ``([a-z]+-)+``: the separator fixes where
    each round ends, so there is one way to match and no blow-up.
    """
    # The stdlib's own regex parser (private but stable across 3.11+): the tree it builds
    # is exactly what the matcher backtracks over.
    parser: Any = importlib.import_module("re._parser")
    c: Any = importlib.import_module("re._constants")
    repeats = {c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT)}

    def unbounded_inside(items: Any) -> bool:
        return any(walk([(op, av)], True) for op, av in items)

    def separated(items: Any) -> bool:
        # Flatten one group: (?:\.\d+) and (\.\d+) read the same.
        while len(items) == 1 and items[0][0] == c.SUBPATTERN:
            items = list(items[0][1][-1])
        loops = [
            (i, av) for i, (op, av) in enumerate(items) if op in repeats and av[1] == c.MAXREPEAT
        ]
        if len(loops) != 1 or unbounded_inside(loops[0][1][2]):
            return False
        index, (_, _, body) = loops[0]
        loop_chars = _char_set(list(body), c)
        if loop_chars is None or any(
            unbounded_inside([item]) for i, item in enumerate(items) if i != index
        ):
            return False
        return any(
            i != index and (chars := _char_set([item], c)) is not None and not chars & loop_chars
            for i, item in enumerate(items)
        )

    def walk(items: Any, inside_repeat: bool) -> bool:
        for op, av in items:
            if op in repeats:
                _, high, sub = av
                if inside_repeat and high == c.MAXREPEAT:
                    return True
                if high > 1 and not inside_repeat and separated(list(sub)):
                    continue
                if walk(sub, inside_repeat or high > 1):
                    return True
            elif op == c.SUBPATTERN:
                if walk(av[-1], inside_repeat):
                    return True
            elif op == c.BRANCH:
                if any(walk(branch, inside_repeat) for branch in av[1]):
                    return True
            elif op in (c.ASSERT, c.ASSERT_NOT) and walk(av[1], inside_repeat):
                return True
        return False

    return bool(walk(parser.parse(pattern), False))


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _not(test: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda ch: not test(ch)


#: Characters a one-character regex item is tested against to compare item sets.
_PROBE_CHARS = [chr(i) for i in range(32, 127)] + ["\t", "\n", "\u00e9", "\u4e00"]


def _char_set(items: list[Any], c: Any) -> frozenset[str] | None:
    """The probe characters a single one-character item matches, or None if it is not one."""
    if len(items) != 1:
        return None
    op, av = items[0]
    if op == c.LITERAL:
        return frozenset({chr(av)})
    if op == c.NOT_LITERAL:
        return frozenset(ch for ch in _PROBE_CHARS if ch != chr(av))
    if op == c.ANY:
        return frozenset(ch for ch in _PROBE_CHARS if ch != "\n")
    if op != c.IN:
        return None
    categories: dict[Any, Callable[[str], bool]] = {
        c.CATEGORY_DIGIT: str.isdigit,
        c.CATEGORY_SPACE: str.isspace,
        c.CATEGORY_WORD: _is_word,
        c.CATEGORY_NOT_DIGIT: _not(str.isdigit),
        c.CATEGORY_NOT_SPACE: _not(str.isspace),
        c.CATEGORY_NOT_WORD: _not(_is_word),
    }
    negate, members = False, set()
    for kind, value in av:
        if kind == c.NEGATE:
            negate = True
        elif kind == c.LITERAL:
            members.add(chr(value))
        elif kind == c.RANGE:
            members.update(ch for ch in _PROBE_CHARS if value[0] <= ord(ch) <= value[1])
        elif kind == c.CATEGORY and value in categories:
            members.update(ch for ch in _PROBE_CHARS if categories[value](ch))
        else:
            return None
    if negate:
        return frozenset(ch for ch in _PROBE_CHARS if ch not in members)
    return frozenset(members)
