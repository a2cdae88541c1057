"""The README and the architecture pages point at things that exist.

Relative links (and their ``#anchors``) in the README, docs/architecture.md,
docs/contract.md and docs/drills.md resolve; the layout docs/architecture.md
draws, and the paths it names, are the repository's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter import kinds

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("README.md", "docs/architecture.md", "docs/contract.md", "docs/drills.md")
ARCHITECTURE = ROOT / "docs" / "architecture.md"
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_REPO_PATH = re.compile(r"(?:exporter|tests|docs|bundle|rules|stack|bench)/[\w./*-]*")
DESCRIPTION_COLUMN = 20
"""In the layout block, a line indented this far continues the description above it."""


def _outside_fences(text: str) -> list[str]:
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading: lower case, punctuation
    dropped (hyphens and underscores kept), spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {
        _slug(line.lstrip("#"))
        for line in _outside_fences(page.read_text())
        if re.match(r"#{1,6} ", line)
    }


def _links(page: Path) -> list[str]:
    found = []
    for line in _outside_fences(page.read_text()):
        found += [t for t in _LINK.findall(line) if not re.match(r"[a-z]+:", t)]
    return found


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_and_their_anchors_resolve(page: str) -> None:
    source = ROOT / page
    broken = []
    for link in _links(source):
        path, _, anchor = link.partition("#")
        target = (source.parent / path).resolve() if path else source
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and (target.suffix != ".md" or anchor not in _anchors(target)):
            broken.append(f"{link}: no such heading")
    assert not broken, f"{page}: " + "; ".join(broken)


def _section(lines: list[str], heading: str) -> list[str]:
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def _layout_block() -> list[str]:
    lines = ARCHITECTURE.read_text().splitlines()
    body = _section(lines, "## Layout")
    first = body.index("```") + 1
    return body[first : body.index("```", first)]


def _layout_entries() -> list[str]:
    """Every path the layout block names, relative to the repository."""
    entries: list[str] = []
    dirs: list[tuple[int, str]] = []  # (indent, path) of the enclosing directories
    for line in _layout_block():
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent >= DESCRIPTION_COLUMN:
            continue
        while dirs and dirs[-1][0] >= indent:
            dirs.pop()
        parent = dirs[-1][1] if dirs else ""
        names = re.split(r"\s{2,}", line.strip())[0]
        for name in (n.strip() for n in names.split(",")):
            entries.append(parent + name)
            if name.endswith("/"):
                dirs.append((indent, parent + name))
    return entries


def _exists(path: str) -> bool:
    """``<kind>`` stands for any kind (the kinds' own tests check each one's files);
    ``<seam>`` for any module."""
    if "<seam>" in path:
        return True
    candidates = (
        [path.replace("<kind>", name) for name in kinds.KINDS] if "<kind>" in path else [path]
    )
    return any((ROOT / c).exists() for c in candidates)


def test_the_layout_drawn_in_architecture_exists() -> None:
    entries = _layout_entries()
    assert "exporter/kinds/<kind>/probe.py" in entries, entries
    missing = [e for e in entries if not _exists(e)]
    assert not missing, f"docs/architecture.md, Layout: {missing}"


def test_the_paths_architecture_names_exist() -> None:
    """Outside "How to add a kind" (whose example kind and "before" column do not exist)."""
    lines = _outside_fences(ARCHITECTURE.read_text())
    skipped = set(_section(lines, "## How to add a kind"))
    spans = [s for line in lines if line not in skipped for s in re.findall(r"`([^`]+)`", line)]
    paths = [s for s in spans if _REPO_PATH.fullmatch(s)]
    assert "exporter/kinds/__init__.py" in paths
    missing = [p for p in paths if not any(ROOT.glob(p))]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"
