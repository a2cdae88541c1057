"""The kind registry (``exporter.kinds``) and what every kind must bring with it.

Each kind has a docs page and a README row, a package of the documented layout
whose ``__init__`` reads no client library, and families of its own; and the
label-provenance table of docs/contract.md names the source of every label in
the catalogue, so the list of families that carry an address cannot drift.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from exporter import kinds
from exporter.catalogue import Family

ROOT = Path(__file__).resolve().parent.parent
KIND_NAMES = list(kinds.KINDS)
CLIENT_LIBRARIES = ("aiokafka", "redis", "asyncpg", "aiohttp", "yarl", "simplefix")
LAYOUT = ("__init__.py", "config.py", "metrics.py", "probe.py")
LIGHT_SIBLINGS = {"config", "metrics"}
"""The only modules of its own package a kind's ``__init__`` may import at load time."""
SOURCES = {"config", "code", "build", "peer", "address"}
PROVENANCE_HEADING = "## Where label values come from"


def _section(text: str, heading: str) -> list[str]:
    """The lines under ``heading`` up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    start = lines.index(heading) + 1
    level = heading.split(" ", 1)[0]
    fenced = False
    for end in range(start, len(lines)):
        fenced ^= lines[end].startswith("```")
        mark = lines[end].split(" ", 1)[0]
        if not fenced and set(mark) == {"#"} and len(mark) <= len(level):
            return lines[start:end]
    return lines[start:]


def _code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _table_rows(lines: list[str]) -> list[list[str]]:
    """The body rows of the first Markdown table in ``lines``, as stripped cells."""
    rows = [line for line in lines if line.startswith("|")]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows[2:]]


def _bullets_after(lines: list[str], marker: str) -> list[str]:
    """The code spans of the bullet list that follows the line starting with ``marker``."""
    start = next(i for i, line in enumerate(lines) if line.startswith(marker))
    items: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("- "):
            items.extend(_code_spans(line))
        elif items or line.startswith("#"):
            break
    return items


# --- (a) docs page and README row -------------------------------------------------------


@pytest.mark.parametrize("name", KIND_NAMES)
def test_every_kind_has_a_docs_page(name: str) -> None:
    assert (ROOT / "docs" / f"{name}.md").is_file(), f"docs/{name}.md is missing"


def test_the_readme_table_of_kinds_has_one_row_per_kind_linking_its_page() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = _table_rows(_section(readme, "## Probes"))
    names = [_code_spans(row[0])[0] for row in rows]
    assert sorted(names) == sorted(KIND_NAMES), "one row per kind in exporter.kinds.KINDS"
    for name, row in zip(names, rows, strict=True):
        assert f"(docs/{name}.md)" in row[-1], f"the {name} row must link docs/{name}.md"


# --- (b) the catalogue assembled from the kinds -----------------------------------------


def test_the_areas_are_the_exporter_the_calendar_and_each_kind() -> None:
    assert list(kinds.AREAS) == ["exporter", "calendar", *KIND_NAMES]


def test_every_family_has_exactly_one_owner() -> None:
    owners = Counter(f.name for fams in kinds.AREAS.values() for f in fams)
    shared = sorted(name for name, n in owners.items() if n > 1)
    assert not shared, f"families declared by more than one owner: {shared}"
    assert sorted(owners) == sorted(f.name for f in kinds.ALL)


@pytest.mark.parametrize("name", KIND_NAMES)
def test_a_kind_declares_its_metrics_modules_families(name: str) -> None:
    metrics = importlib.import_module(f"exporter.kinds.{name}.metrics")
    assert kinds.KINDS[name].families == metrics.FAMILIES
    assert all(isinstance(f, Family) for f in metrics.FAMILIES)


# --- (c) reading a configuration imports no client library ------------------------------

_IMPORT_SPY = r"""
import json, sys
banned = set(sys.argv[2].split(","))
chains = {}

class Spy:
    @staticmethod
    def find_spec(name, path=None, target=None):
        top = name.partition(".")[0]
        if top in banned and top not in chains:
            frame, chain = sys._getframe(1), []
            while frame is not None:
                if frame.f_code.co_name == "<module>":
                    chain.append(frame.f_globals.get("__name__", "?"))
                frame = frame.f_back
            chains[top] = chain[::-1][1:]  # outermost first, without __main__
        return None

sys.meta_path.insert(0, Spy)
__import__(sys.argv[1])
print(json.dumps({m: chains.get(m, []) for m in sorted(banned) if m in sys.modules}))
"""


@pytest.mark.parametrize("module", ["exporter.kinds", "exporter.config", "exporter.webconfig"])
def test_reading_a_configuration_imports_no_client_library(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_SPY, module, ",".join(CLIENT_LIBRARIES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: dict[str, list[str]] = json.loads(out.stdout)
    assert not loaded, f"import {module} loads client libraries: " + "; ".join(
        f"{lib} via {' -> '.join(chain)}" for lib, chain in loaded.items()
    )


# --- (d) the package layout -------------------------------------------------------------


def _package(name: str) -> Path:
    return ROOT / "exporter" / "kinds" / name


@pytest.mark.parametrize("name", KIND_NAMES)
def test_a_kind_package_has_the_documented_layout(name: str) -> None:
    missing = [f for f in LAYOUT if not (_package(name) / f).is_file()]
    assert not missing, f"exporter/kinds/{name}/ lacks {missing}"
    assert importlib.import_module(f"exporter.kinds.{name}").KIND is kinds.KINDS[name]


def _module_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


@pytest.mark.parametrize("name", KIND_NAMES)
def test_a_kind_probe_module_defines_its_runtime(name: str) -> None:
    tree = ast.parse((_package(name) / "probe.py").read_text())
    assert "RUNTIME" in _module_level_names(tree), f"exporter/kinds/{name}/probe.py: RUNTIME"
    probe = importlib.import_module(f"exporter.kinds.{name}.probe")
    assert kinds.KINDS[name].load() is probe.RUNTIME


def _eager_siblings(tree: ast.Module) -> set[str]:
    """Modules of the same package imported when the package is (not in functions,
    not under ``if TYPE_CHECKING:``)."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module is None:
                found.update(alias.name for alias in node.names)
            else:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("name", KIND_NAMES)
def test_a_kind_package_imports_only_its_config_and_metrics(name: str) -> None:
    tree = ast.parse((_package(name) / "__init__.py").read_text())
    heavy = sorted(_eager_siblings(tree) - LIGHT_SIBLINGS)
    assert not heavy, f"exporter/kinds/{name}/__init__.py imports {heavy} when imported"


# --- label provenance (docs/contract.md) ------------------------------------------------


@dataclass(frozen=True)
class Provenance:
    """One row of the provenance table: these labels, on these families, from there."""

    labels: tuple[str, ...]
    families: tuple[str, ...]
    source: str

    def covers(self, family: str, label: str) -> bool:
        return label in self.labels and any(fnmatchcase(family, p) for p in self.families)


def _contract() -> list[str]:
    return _section((ROOT / "docs" / "contract.md").read_text(), PROVENANCE_HEADING)


def _provenance() -> list[Provenance]:
    return [
        Provenance(tuple(_code_spans(r[0])), tuple(_code_spans(r[1])), r[2])
        for r in _table_rows(_contract())
    ]


def _source(rows: list[Provenance], family: Family, label: str) -> str:
    """The label's source on the family ("?" unless exactly one row covers it, which
    the test of the table reports)."""
    sources = [r.source for r in rows if r.covers(family.name, label)]
    return sources[0] if len(sources) == 1 else "?"


def test_the_provenance_table_names_known_sources_and_families() -> None:
    rows = _provenance()
    assert rows and all(r.labels and r.families for r in rows)
    assert {r.source for r in rows} <= SOURCES
    plain = {p for r in rows for p in r.families if not any(c in p for c in "*?[")}
    unknown = sorted(plain - set(kinds.BY_NAME))
    assert not unknown, f"not in the catalogue: {unknown}"


def test_every_label_in_the_catalogue_has_exactly_one_provenance_row() -> None:
    rows = _provenance()
    problems = []
    for f in kinds.ALL:
        for label in f.labels:
            n = sum(r.covers(f.name, label) for r in rows)
            if n != 1:
                problems.append(f"{f.name}{{{label}}}: {n} rows")
    assert not problems, "docs/contract.md, " + PROVENANCE_HEADING + ": " + "; ".join(problems)
    used = {r for r in rows for f in kinds.ALL for lbl in f.labels if r.covers(f.name, lbl)}
    assert set(rows) == used, f"rows that cover no label: {[r for r in rows if r not in used]}"


def test_the_documented_address_families_are_those_with_an_address_label() -> None:
    rows = _provenance()
    carrying = {
        f.name for f in kinds.ALL if any(_source(rows, f, lbl) == "address" for lbl in f.labels)
    }
    listed = _bullets_after(_contract(), "Families with a label taken from an address")
    assert sorted(listed) == sorted(carrying)
    readme = (ROOT / "README.md").read_text()
    assert all(name in readme for name in carrying), "the README names each of them"


def test_the_documented_probe_address_labels_are_the_target_name_labels() -> None:
    """On /probe the target's name is the address asked for: the labels holding it are
    ``target`` (framework series) and the first label of each kind's families."""
    name_labels = {"target"} | {f.labels[0] for k in kinds.KINDS.values() for f in k.families}
    listed = _bullets_after(_contract(), "On `/probe`")
    assert sorted(listed) == sorted(name_labels)
