"""Check the built dashboards against Grafana's published dashboard model.

The model is the npm package ``@grafana/schema`` (its ``Dashboard`` interface,
``dist/types/raw/dashboard/x/types.gen.d.ts``), pinned with the TypeScript
compiler in ``dashboards/schema/package.json`` and its lock file and installed
there by ``make setup`` (``npm ci``). Each dashboard becomes a TypeScript module
``export const dashboard: DashboardJson = <its JSON>;`` (``DashboardJson``:
``dashboards/schema/dashboard.ts``), and one ``tsc --noEmit --strict`` run
checks them all: a field the model does not have (``refrsh``, ``gridPoss``)
fails the object literal's excess-property check, a value of the wrong type
(``"schemaVersion": "39"``) fails the assignment. Each of tsc's errors is
mapped back to the dashboard and the JSON path of the offending field.

``python -m bundle.schema`` checks ``dashboards/build/*.json`` (or the files
given, or with ``--fresh`` a fresh build of the Jsonnet sources), prints the
figures and exits 0; it prints each problem (``<file>: <path>: <what>``) and
exits 1 when a dashboard does not match, 2 when the checker cannot run.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .build import ROOT
from .dashboards import BUILD_DIR
from .dashboards import build as build_dashboards

SCHEMA_DIR = ROOT / "dashboards" / "schema"
MODEL = SCHEMA_DIR / "dashboard.ts"
PACKAGES = ("@grafana/schema", "typescript")
"""The npm packages the check needs, pinned in ``dashboards/schema/package.json``."""
TSC_FLAGS = ("--noEmit", "--strict", "--pretty", "false")
TSC_TIMEOUT = 300.0

JsonPath = tuple[str | int, ...]

_HEADER = "import type {{ DashboardJson }} from {model};\n"
_DECLARATION = "export const dashboard: DashboardJson = "
_DIAGNOSTIC = re.compile(
    r"^(?P<file>.+?)\((?P<line>\d+),(?P<col>\d+)\): error (?P<code>TS\d+): (?P<text>.*)$"
)
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_LONG_TYPE = re.compile(r"'[^']{61,}'")
_SUGGESTION = re.compile(r"Did you mean (?:to write )?'([^']+)'\?")


class SchemaError(Exception):
    """The check could not run (npm packages missing or stale, no node, tsc failed)."""


@dataclass(frozen=True)
class Problem:
    """One place where a dashboard does not match the model."""

    dashboard: str
    """The dashboard's label: its file, relative to the repository when inside it."""
    path: str
    """The JSON path of the field (``panels[3].gridPos.w``); empty for the top level."""
    message: str
    """What is wrong, in tsc's terms shortened (``unknown field 'refrsh'``)."""
    panel: str | None = None
    """The title of the panel the field belongs to, if any."""

    def __str__(self) -> str:
        where = self.path or "(top level)"
        if self.panel is not None:
            where += f" (panel {json.dumps(self.panel, ensure_ascii=False)})"
        return f"{self.dashboard}: {where}: {self.message}"


@dataclass(frozen=True)
class Result:
    """The outcome of one check: the problems and the figures."""

    problems: list[Problem]
    dashboards: int
    panels: int
    variables: int
    versions: dict[str, str]
    """Installed version of each of ``PACKAGES``."""
    seconds: float
    """Wall time of the tsc run."""

    @property
    def ok(self) -> bool:
        """True when every dashboard matches the model."""
        return not self.problems

    def summary(self) -> str:
        """The one-line figures ``python -m bundle.schema`` prints."""
        against = f"@grafana/schema {self.versions['@grafana/schema']}"
        tool = f"typescript {self.versions['typescript']}, tsc {self.seconds:.1f} s"
        if self.ok:
            return (
                f"schema: {self.dashboards} dashboards ({self.panels} panels,"
                f" {self.variables} variables) valid against {against} ({tool})"
            )
        bad = len({p.dashboard for p in self.problems})
        return (
            f"schema: {bad} of {self.dashboards} dashboards invalid against {against}:"
            f" {len(self.problems)} problems ({tool})"
        )


def pinned() -> dict[str, str]:
    """Version of each of ``PACKAGES`` pinned in ``dashboards/schema/package.json``."""
    manifest = json.loads((SCHEMA_DIR / "package.json").read_text(encoding="utf-8"))
    deps: dict[str, str] = manifest["dependencies"]
    return {name: deps[name] for name in PACKAGES}


def installed() -> dict[str, str]:
    """Version of each of ``PACKAGES`` installed in ``dashboards/schema/node_modules``.

    Raises ``SchemaError`` when one is missing or differs from its pin (run
    ``make setup``)."""
    versions: dict[str, str] = {}
    want = pinned()
    for name in PACKAGES:
        manifest = SCHEMA_DIR / "node_modules" / name / "package.json"
        version = (
            json.loads(manifest.read_text(encoding="utf-8"))["version"]
            if manifest.is_file()
            else None
        )
        if version != want[name]:
            found = f"{version} installed" if version else "not installed"
            raise SchemaError(
                f"{label_of(SCHEMA_DIR)}: npm package {name} {want[name]} is {found}:"
                " run make setup (npm ci there)"
            )
        versions[name] = version
    return versions


def emit(value: Any, lead: str = _DECLARATION) -> tuple[list[str], list[JsonPath]]:
    """JSON text of ``value``, one field or element per line after ``lead``, and
    the JSON path of the value on each line (a closing bracket belongs to its
    container), so a line number of tsc's names a field."""
    lines: list[str] = []
    paths: list[JsonPath] = []

    def walk(item: Any, path: JsonPath, indent: str, head: str) -> None:
        if isinstance(item, dict) and item:
            children: list[tuple[str | int, Any, str]] = [
                (str(k), v, json.dumps(str(k)) + ": ") for k, v in item.items()
            ]
            brackets = "{}"
        elif isinstance(item, list) and item:
            children = [(i, v, "") for i, v in enumerate(item)]
            brackets = "[]"
        else:
            lines.append(head + json.dumps(item))
            paths.append(path)
            return
        lines.append(head + brackets[0])
        paths.append(path)
        inner = indent + "  "
        for n, (key, child, label) in enumerate(children):
            walk(child, (*path, key), inner, inner + label)
            if n < len(children) - 1:
                lines[-1] += ","
        lines.append(indent + brackets[1])
        paths.append(path)

    walk(value, (), "", lead)
    lines[-1] += ";"
    return lines, paths


def format_path(path: JsonPath) -> str:
    """``("panels", 3, "gridPos", "w")`` -> ``panels[3].gridPos.w``."""
    text = ""
    for key in path:
        if isinstance(key, int):
            text += f"[{key}]"
        elif _IDENTIFIER.match(key):
            text += f".{key}" if text else key
        else:
            text += f"[{json.dumps(key)}]"
    return text


def panel_title(dashboard: Any, path: JsonPath) -> str | None:
    """The title of the innermost panel on ``path`` (``panels[i]`` or a row's
    ``panels[i].panels[j]``), or None when the path is not inside a panel."""
    title: str | None = None
    node = dashboard
    while len(path) >= 2 and path[0] == "panels" and isinstance(node, dict):
        items, index = node.get("panels"), path[1]
        if not isinstance(items, list) or not isinstance(index, int) or index >= len(items):
            break
        node, path = items[index], path[2:]
        found = node.get("title") if isinstance(node, dict) else None
        title = found if isinstance(found, str) else None
    return title


def shorten(text: str) -> str:
    """tsc's message with long type expansions cut to ``'{…}'``."""
    return _LONG_TYPE.sub("'{…}'", text)


def _statement(text: str) -> str | None:
    """A short statement of one line of a tsc message, when it is of a known kind."""
    unknown = re.search(r"'\"?([^'\"]*)\"?' does not exist in type", text)
    if text.startswith("Object literal may only specify known properties") and unknown:
        return f"unknown field '{unknown.group(1)}': not in Grafana's dashboard model"
    missing = re.match(r"Property '([^']+)' is missing in type", text)
    if missing:
        return f"missing required field '{missing.group(1)}'"
    several = re.search(r"is missing the following properties from type '.*': (.+)$", text)
    if several:
        return f"missing required fields: {several.group(1)}"
    types = re.match(r"Type '(.*)' is not assignable to type '(.*)'\.", text)
    if types:
        got, want = (shorten(f"'{t}'")[1:-1] for t in types.groups())
        return f"wrong type: {got}, where the model has {want}"
    return None


def describe(message: Sequence[str]) -> str:
    """A short statement of one tsc diagnostic, from its lines (the first, then
    tsc's elaboration, most specific last): the most specific known statement,
    with tsc's suggestion when it made one."""
    statement = next(
        (s for s in map(_statement, reversed(message)) if s is not None),
        shorten(message[0]),
    )
    hints = (_SUGGESTION.search(line) for line in message)
    suggestion = next((found for found in hints if found), None)
    return statement + (f" (did you mean {suggestion.group(1)}?)" if suggestion else "")


def _diagnostics(output: str) -> Iterator[tuple[str, int, str, list[str]]]:
    """(file, line, code, message lines) of each tsc error."""
    current: tuple[str, int, str, list[str]] | None = None
    for line in output.splitlines():
        found = _DIAGNOSTIC.match(line)
        if found:
            if current:
                yield current
            current = (found["file"], int(found["line"]), found["code"], [found["text"]])
        elif current and line.startswith(" "):
            current[3].append(line.strip())
        elif current:
            yield current
            current = None
    if current:
        yield current


def _count(dashboard: Any) -> tuple[int, int]:
    """Panels (rows and the panels inside them included) and template variables."""

    def panels(items: Any) -> int:
        if not isinstance(items, list):
            return 0
        return sum(1 + panels(p.get("panels")) for p in items if isinstance(p, dict))

    if not isinstance(dashboard, dict):
        return 0, 0
    templating = dashboard.get("templating")
    variables = templating.get("list") if isinstance(templating, dict) else None
    return panels(dashboard.get("panels")), len(variables) if isinstance(variables, list) else 0


def check(dashboards: Mapping[str, Any]) -> Result:
    """Check each dashboard (label -> parsed JSON) against the model in one tsc run.

    Raises ``SchemaError`` when the check cannot run or tsc fails in a way that
    names no dashboard."""
    versions = installed()
    node = shutil.which("node")
    if node is None:
        raise SchemaError("node is not on PATH: run make setup (Debian packages nodejs npm)")
    tsc = SCHEMA_DIR / "node_modules" / "typescript" / "bin" / "tsc"
    problems: list[Problem] = []
    labels = list(dashboards)
    panels = variables = 0
    with tempfile.TemporaryDirectory(prefix="tradeops-schema-") as tmp:
        work = Path(tmp)
        header = _HEADER.format(model=json.dumps(str(MODEL.with_suffix(""))))
        line_paths: dict[str, list[JsonPath]] = {}
        files: dict[str, str] = {}
        for n, label in enumerate(labels):
            dashboard = dashboards[label]
            p, v = _count(dashboard)
            panels, variables = panels + p, variables + v
            if not isinstance(dashboard, dict):
                problems.append(Problem(label, "", "not a JSON object"))
                continue
            name = f"dashboard{n}.ts"
            lines, paths = emit(dashboard)
            (work / name).write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
            line_paths[name] = [(), *paths]  # line 1 is the import
            files[name] = label
        # The model needs no library beyond es5's (Array, Record): the smallest is
        # the quickest to load. --noEmit --strict are on tsc's command line.
        config = {
            "compilerOptions": {
                "module": "preserve",
                "moduleResolution": "bundler",
                "target": "es2022",
                "lib": ["es5"],
                "skipLibCheck": True,
                "types": [],
            },
            "files": sorted(files),
        }
        (work / "tsconfig.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        started = time.monotonic()
        if files:
            try:
                run = subprocess.run(
                    [node, str(tsc), "--project", "tsconfig.json", *TSC_FLAGS],
                    cwd=work,
                    capture_output=True,
                    text=True,
                    timeout=TSC_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as err:
                raise SchemaError(f"tsc did not finish within {TSC_TIMEOUT:.0f} s") from err
            output = run.stdout + run.stderr
            found = 0
            for file, line, _code, message in _diagnostics(output):
                name = Path(file).name
                if name not in files:
                    raise SchemaError(f"tsc failed outside the dashboards:\n{output.strip()}")
                found += 1
                paths = line_paths[name]
                path = paths[line - 1] if 0 < line <= len(paths) else ()
                label = files[name]
                title = panel_title(dashboards[label], path)
                problems.append(Problem(label, format_path(path), describe(message), title))
            if run.returncode != 0 and not found:
                raise SchemaError(f"tsc failed (exit {run.returncode}):\n{output.strip()}")
        seconds = time.monotonic() - started
    order = {label: n for n, label in enumerate(labels)}
    problems.sort(key=lambda p: order[p.dashboard])
    return Result(problems, len(labels), panels, variables, versions, seconds)


def label_of(path: Path) -> str:
    """A file's label: relative to the repository when inside it."""
    full = path.resolve()
    return str(full.relative_to(ROOT)) if full.is_relative_to(ROOT) else str(path)


def check_files(paths: Sequence[Path]) -> Result:
    """Check dashboard files; a file that is not JSON is a problem of its own."""
    dashboards: dict[str, Any] = {}
    unreadable: list[Problem] = []
    for path in paths:
        label = label_of(path)
        try:
            dashboards[label] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            unreadable.append(Problem(label, "", f"cannot be read as JSON: {err}"))
    result = check(dashboards)
    return Result(
        unreadable + result.problems,
        result.dashboards + len(unreadable),
        result.panels,
        result.variables,
        result.versions,
        result.seconds,
    )


def built_files(directory: Path = BUILD_DIR) -> list[Path]:
    """The built dashboards, ``dashboards/build/*.json``, sorted."""
    return sorted(directory.glob("*.json"))


def fresh() -> dict[str, Any]:
    """A fresh build of the Jsonnet sources, labelled ``<uid>.json (fresh build)``."""
    return {f"{name} (fresh build)": json.loads(text) for name, text in build_dashboards().items()}


def main(argv: list[str] | None = None) -> int:
    """Command line: check the built (or given, or freshly built) dashboards."""
    parser = argparse.ArgumentParser(prog="python -m bundle.schema", description=__doc__)
    parser.add_argument("files", nargs="*", type=Path, help="dashboard JSON files")
    parser.add_argument(
        "--fresh", action="store_true", help="check a fresh build of the Jsonnet sources"
    )
    args = parser.parse_args(argv)
    try:
        if args.fresh:
            result = check(fresh())
        else:
            files = args.files or built_files()
            if not files:
                print(f"schema: no dashboards in {label_of(BUILD_DIR)}", file=sys.stderr)
                return 1
            result = check_files(files)
    except SchemaError as err:
        print(f"schema: {err}", file=sys.stderr)
        return 2
    for problem in result.problems:
        print(problem, file=sys.stderr)
    print(result.summary(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
