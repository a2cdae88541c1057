"""The bundle's own checks: what the rule files hold, which names their PromQL
reads, promtool's verdict on the tests, and the coverage of those tests.

``python -m bundle.check`` prints the figures (alerts, recording rules,
promtool cases, coverage) and exits 1 when a check fails; the pytest suite
asserts the same functions.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from exporter import kinds

from .build import RULES_DIR
from .contract import BY_NAME as CONTRACT
from .contract import PROMETHEUS_SERIES

TESTS_DIR = RULES_DIR / "tests"
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@dataclass(frozen=True)
class Rule:
    """One rule of a rule file."""

    file: str
    group: str
    body: dict[str, Any]

    @property
    def name(self) -> str:
        """The alert or recorded series name."""
        return str(self.body.get("alert") or self.body["record"])

    @property
    def is_alert(self) -> bool:
        """True for an alerting rule."""
        return "alert" in self.body


def rule_files(directory: Path = RULES_DIR) -> list[Path]:
    """The rule files of the bundle, sorted."""
    return sorted(directory.glob("*.yml"))


def load_rules(directory: Path = RULES_DIR) -> list[Rule]:
    """Every rule of every rule file."""
    rules: list[Rule] = []
    for path in rule_files(directory):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in doc["groups"]:
            rules.extend(Rule(path.name, group["name"], r) for r in group["rules"])
    return rules


@dataclass(frozen=True)
class Selector:
    """A vector selector found in an expression: metric name and its matchers."""

    name: str | None
    matchers: frozenset[tuple[str, str, str]]


def selectors(expr: str) -> list[Selector]:
    """The vector selectors of a PromQL expression, from its parsed tree."""
    found: list[Selector] = []

    def visit(node: Any, *_: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = frozenset(
                (m.name, str(m.op).rsplit(".", 1)[-1], m.value)
                for m in node.matchers.matchers
                if m.name != "__name__"
            )
            found.append(Selector(node.name, matchers))

    promql_parser.walk(promql_parser.parse(expr), visit, None)
    return found


def family_of(name: str) -> str | None:
    """The catalogue family a series name belongs to (histogram suffixes included)."""
    if name in kinds.BY_NAME:
        return name
    for suffix in _HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        fam = kinds.BY_NAME.get(base) if base != name else None
        if fam is not None and fam.type == "histogram":
            return base
    return None


def unknown_names(expr: str, recorded: set[str]) -> list[str]:
    """Names the expression reads that are neither in the catalogue, the runtime
    contract, Prometheus' own series nor a recording rule of the bundle."""
    out = []
    for sel in selectors(expr):
        name = sel.name
        if name is None:
            out.append("<selector without a metric name>")
        elif not (
            family_of(name) or name in CONTRACT or name in PROMETHEUS_SERIES or name in recorded
        ):
            out.append(name)
    return out


def matchers_of(selector_text: str) -> frozenset[tuple[str, str, str]]:
    """The matchers of a config selector such as ``job="tradeops", env="prod"``."""
    (sel,) = selectors("x{" + selector_text + "}")
    return sel.matchers


def selector_problems(expr: str, config: dict[str, Any]) -> list[str]:
    """Selectors that lack the bundle's job selector: the exporter's series (and its
    ``up``) need ``selector``; the runtime contract's series (and the runtime's
    ``up``) need ``sla.runtimeSelector``. Recording rules and ``ALERTS`` need none."""
    exporter = matchers_of(config["selector"])
    runtime = matchers_of(config["sla"]["runtimeSelector"])
    problems = []
    for sel in selectors(expr):
        if sel.name is None or sel.name.startswith("tradeops:") or sel.name == "ALERTS":
            continue
        if sel.name in CONTRACT:
            wanted = [runtime]
        elif sel.name == "up":
            wanted = [exporter, runtime]
        else:
            wanted = [exporter]
        if not any(m <= sel.matchers for m in wanted):
            problems.append(f"{sel.name} lacks {' or '.join(sorted(map(str, wanted)))}")
    return problems


@dataclass
class Coverage:
    """What the promtool tests exercise."""

    fired: set[str] = field(default_factory=set)
    not_fired: set[str] = field(default_factory=set)
    evaluated: set[str] = field(default_factory=set)
    named: set[str] = field(default_factory=set)
    """Every alert name an alert_rule_test mentions."""
    cases: int = 0
    """alert_rule_test and promql_expr_test entries."""
    tests: int = 0


def test_files(directory: Path = TESTS_DIR) -> list[Path]:
    """The promtool test files, sorted."""
    return sorted(directory.glob("*.test.yml"))


def _test_docs(directory: Path) -> Iterator[dict[str, Any]]:
    for path in test_files(directory):
        yield from yaml.safe_load(path.read_text(encoding="utf-8")).get("tests", [])


def coverage(directory: Path = TESTS_DIR) -> Coverage:
    """Which alerts the tests fire and keep quiet, and which records they evaluate."""
    cov = Coverage()
    for test in _test_docs(directory):
        cov.tests += 1
        for case in test.get("alert_rule_test", []):
            cov.cases += 1
            cov.named.add(case["alertname"])
            (cov.fired if case.get("exp_alerts") else cov.not_fired).add(case["alertname"])
        for case in test.get("promql_expr_test", []):
            cov.cases += 1
            cov.evaluated.update(s.name for s in selectors(case["expr"]) if s.name)
    return cov


def coverage_problems(rules: list[Rule], cov: Coverage) -> list[str]:
    """Alerts not fired or not kept quiet, records not evaluated, tests of unknown alerts."""
    alerts = {r.name for r in rules if r.is_alert}
    records = {r.name for r in rules if not r.is_alert}
    problems = [f"{a}: no test fires it" for a in sorted(alerts - cov.fired)]
    always = {r.name for r in rules if r.is_alert and r.body["expr"].strip() == "vector(1)"}
    problems += [
        f"{a}: no test shows it not firing" for a in sorted(alerts - always - cov.not_fired)
    ]
    problems += [f"{r}: no promql_expr_test evaluates it" for r in sorted(records - cov.evaluated)]
    problems += [f"{a}: tested but no such alert" for a in sorted(cov.named - alerts)]
    return problems


def run_promtool(path: Path) -> subprocess.CompletedProcess[str]:
    """``promtool test rules`` on one test file (run from its directory)."""
    return subprocess.run(
        ["promtool", "test", "rules", path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def main(argv: list[str] | None = None) -> int:
    """Print the bundle's figures; exit 1 if promtool or the coverage fails.
    ``--no-promtool`` leaves the promtool runs to the test suite."""
    run = "--no-promtool" not in (sys.argv[1:] if argv is None else argv)
    rules = load_rules()
    cov = coverage()
    alerts = sum(r.is_alert for r in rules)
    failed = []
    for path in test_files() if run else []:
        result = run_promtool(path)
        if result.returncode != 0:
            failed.append(path.name)
            print(result.stdout + result.stderr)
    problems = coverage_problems(rules, cov)
    for problem in problems:
        print(f"coverage: {problem}")
    records = {r.name for r in rules if not r.is_alert}
    print(
        f"bundle: {alerts} alerts, {len(rules) - alerts} recording rules"
        f" ({len(records)} series names) in "
        f"{len(rule_files())} files; promtool: {len(test_files())} files, {cov.tests} tests, "
        f"{cov.cases} cases, {f'{len(failed)} failed' if run else 'run by pytest'}; coverage: "
        f"{len(cov.fired)}/{alerts} alerts fired, {len(cov.not_fired)}/{alerts} not fired, "
        f"{len(cov.evaluated & records)}/{len(records)} recorded series evaluated"
    )
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
