"""The package's import graph has no cycles, and each API style lives in one module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("routing", "fake_servers")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Modules of ours that ``path`` imports anywhere, except under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out.update(n for n in names if n in known)
    return out


def graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (a package's __init__ excluded as a target
    when the importer lives inside that package: importing a sibling runs it anyway)."""
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    known = set(files)
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = _imports(path, known) - {name}
        edges[name] = {t for t in targets if not name.startswith(t + ".")}
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if state.get(target) is None and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if state.get(node) is None and (found := visit(node)):
            return found
    return None


def test_no_import_cycles() -> None:
    """No module of ours imports, directly or not, one that imports it back."""
    cycle = _cycle(graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle() -> None:
    """The check itself can fail: a made-up cycle is reported."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_api_style_knowledge_lives_in_its_module() -> None:
    """Outside routing/adapters, no module names an API style's wire paths or headers."""
    wire = (
        "/api/chat",
        "/v1/messages",
        "/chat/completions",
        "/api/tags",
        "x-api-key",
        "anthropic-version",
        "/api/ps",
    )
    # The doors serve these paths and describe their requests; they do not call them.
    allowed = {
        "routing/_gateway.py",
        "routing/_gateway_ollama.py",
        "routing/_gateway_http.py",
        "routing/_demo.py",
        "routing/_request_specs.py",
        "routing/_request_fields.py",
        "routing/_request_body.py",
        "routing/_ollama_request.py",
    }
    offenders = []
    for path in (ROOT / "routing").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        door = rel.startswith("routing/_gateway")  # a door module: paths it serves
        if rel.startswith(("routing/adapters/", "routing/conformance/")) or rel in allowed or door:
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{rel}: {w}" for w in wire if w in text]
    assert offenders == []
