"""Match rules compiled once at load; evaluation is pure and cached per model name."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from routing.config import Config, Rule

__all__ = ["CompiledRule", "RuleSet"]

#: Distinct model names whose rule lookup is remembered (names come from callers).
_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule with its conditions compiled: exact names, and one regex for globs and regexes."""

    rule: Rule
    exact: frozenset[str]
    pattern: re.Pattern[str] | None

    def matches(self, model: str | None) -> bool:
        """True when the rule applies to a request for ``model`` (None: no model named)."""
        if self.rule.catch_all:
            return True
        if model is None:
            return False
        if model in self.exact:
            return True
        return self.pattern is not None and self.pattern.fullmatch(model) is not None


def _compile(rule: Rule) -> CompiledRule:
    parts = [fnmatch.translate(g) for g in rule.globs]
    parts += [f"(?:{r})" for r in rule.regexes]
    pattern = re.compile("|".join(parts)) if parts else None
    return CompiledRule(rule, frozenset(rule.exact), pattern)


class RuleSet:
    """The config's rules in order; ``first_match`` is the first rule matching a model."""

    def __init__(self, config: Config) -> None:
        self.rules = tuple(_compile(r) for r in config.rules)
        self._every = tuple(config.instances)
        self._cache: dict[str | None, CompiledRule | None] = {}

    def first_match(self, model: str | None) -> CompiledRule | None:
        """The first rule matching ``model``, or None (memoised)."""
        try:
            return self._cache[model]
        except KeyError:
            pass
        found = next((r for r in self.rules if r.matches(model)), None)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[model] = found
        return found

    def candidates(self, model: str | None) -> tuple[tuple[str, ...], str | None]:
        """Instance keys to consider for ``model`` and the label of the rule that chose them.

        Without a matching rule every instance is a candidate: the live model lists
        still decide, so this never routes a model to an instance that lacks it.
        """
        rule = self.first_match(model)
        if rule is None:
            return self._every, None
        return rule.rule.targets, rule.rule.label
