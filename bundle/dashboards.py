"""Build the bundle's Grafana dashboards from their Jsonnet sources.

``python -m bundle.dashboards`` writes ``dashboards/build/<uid>.json`` (sorted
keys, two-space indent); ``--check`` only compares and names the stale files;
``--override`` applies a user's Jsonnet object on top of the bundle
(``{_config+:: {...}}``) and ``--out`` writes elsewhere. The JSON is committed so
users without Jsonnet import it into Grafana as it is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import _jsonnet

from .build import ROOT, parse_cli, stale_files, write_files
from .build import evaluate as evaluate
from .lint import panels, queries

DASHBOARDS_DIR = ROOT / "dashboards"
BUILD_DIR = DASHBOARDS_DIR / "build"


def sources() -> list[Path]:
    """The dashboard sources, ``dashboards/*.jsonnet``, sorted."""
    return sorted(DASHBOARDS_DIR.glob("*.jsonnet"))


def keys_of(source: Path) -> list[str]:
    """The dashboard keys a source adds to ``grafanaDashboards``."""
    rel = source.relative_to(ROOT).as_posix()
    snippet = f"std.objectFields((import '{rel}').grafanaDashboards)"
    text = _jsonnet.evaluate_snippet("<keys>", snippet, jpathdir=[str(ROOT)])
    keys: list[str] = json.loads(text)
    return keys


def render(dashboard: dict[str, Any]) -> str:
    """The JSON text of one dashboard: sorted keys, two-space indent, a newline."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build(override: str = "{}") -> dict[str, str]:
    """File name (``<uid>.json``) -> JSON text for every dashboard."""
    dashboards = evaluate(override)["dashboards"]
    return {f"{d['uid']}.json": render(d) for _, d in sorted(dashboards.items())}


def stale(out: Path = BUILD_DIR, override: str = "{}") -> list[str]:
    """Files under ``out`` that differ from a fresh build (or are missing or extra)."""
    return stale_files(build(override), out, "*.json")


def write(out: Path = BUILD_DIR, override: str = "{}") -> list[Path]:
    """Write a fresh build into ``out`` (removing JSON files no dashboard produces)."""
    return write_files(build(override), out, "*.json")


def summary(dashboards: dict[str, Any]) -> str:
    """The figures: dashboards, panels (rows apart) and queries (targets and
    variable queries)."""
    shown = [p for d in dashboards.values() for p in panels(d) if p.get("type") != "row"]
    rows = sum(p.get("type") == "row" for d in dashboards.values() for p in panels(d))
    n_queries = sum(len(queries(d)) for d in dashboards.values())
    uids = ", ".join(sorted(d["uid"] for d in dashboards.values()))
    return (
        f"dashboards: {len(dashboards)} ({uids}),"
        f" {len(shown)} panels in {rows} rows, {n_queries} queries"
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: build (default) or ``--check``."""
    args, override = parse_cli("python -m bundle.dashboards", __doc__, BUILD_DIR, argv)
    if args.check:
        problems = stale(args.out, override)
        for name in problems:
            print(
                f"{args.out / name}: differs from a fresh build (run make dashboards)",
                file=sys.stderr,
            )
        if problems:
            return 1
        print(summary(evaluate(override)["dashboards"]))
        return 0
    for path in write(args.out, override):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
