"""The README's configuration reference names every key of the schema, so docs cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from config_schema_walk import SCHEMA, properties

README = Path(__file__).parents[2] / "README.md"


def reference_section() -> str:
    """The text of README's `## Configuration reference`, up to the next `## ` heading."""
    text = README.read_text("utf-8")
    match = re.search(r"^## Configuration reference\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, "README.md has no '## Configuration reference' section"
    return match.group(1)


def test_readme_headings() -> None:
    """README keeps its top-level structure."""
    prose = re.sub(r"^```.*?^```", "", README.read_text("utf-8"), flags=re.M | re.S)
    headings = re.findall(r"^#{1,2} .+$", prose, re.M)
    assert headings == [
        "# routing",
        "## Quick start",
        "## Configuration reference",
        "## CLI",
        "## Library use",
        "## Testing",
    ]


def test_quick_start_commands() -> None:
    """The Quick start gives the install + demo command and the test command, as written."""
    text = README.read_text("utf-8")
    assert "pip install -e '.[test,speed]' && routing demo" in text
    assert "python -m pytest -q" in text


@pytest.mark.parametrize("path", [p for p, _ in properties(SCHEMA)])
def test_key_documented(path: str) -> None:
    """Each schema property path appears, in backticks, in the README reference."""
    assert f"`{path}`" in reference_section()


def test_no_stale_keys() -> None:
    """Every key path the reference tables document still exists in the schema."""
    known = {p for p, _ in properties(SCHEMA)}
    rows = re.findall(r"^\| `([a-z_<>.\[\]]+)` \|", reference_section(), re.M)
    assert rows
    assert set(rows) - known == set()
