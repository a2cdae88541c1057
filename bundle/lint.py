"""Static checks of the bundle's dashboards, without a Grafana server: the rules
of Grafana's dashboard-linter that apply, and that every metric a query reads
exists. Each check takes a dashboard and the bundle config and returns its
problems as text (``<panel title>: <what is wrong>``); the test suite asserts
that none has any, and that each catches a planted bad panel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import promql_parser

from exporter import kinds

from .check import family_of, matchers_of, selector_problems, selectors, unknown_names

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

UNITLESS_TYPES = frozenset({"row", "text", "table"})
"""Panel types the unit rule exempts: a row and a text panel show no value, a
table's cells are labels and values of differing kinds (its unit stays 'none')."""

NO_QUERY_TYPES = frozenset({"row", "text"})
"""Panel types without queries."""

RATE_FUNCTIONS = frozenset({"rate", "irate", "increase"})
COUNTER_FUNCTIONS = RATE_FUNCTIONS | {"resets"}

# Grafana's interval variables become sentinel durations, so the parsed tree
# still says which one a range used.
_INTERVALS = {
    "__rate_interval": timedelta(seconds=9999),
    "__interval": timedelta(seconds=9998),
    "__range": timedelta(seconds=9997),
}
RATE_INTERVAL = _INTERVALS["__rate_interval"]
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)
VARIABLE_PREFIX = "__var_"


def substitute(expr: str) -> str:
    """The expression with Grafana's variables replaced, so it parses: interval
    variables by sentinel durations, any other ``$name`` by ``__var_name__``."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in _INTERVALS:
            return f"{int(_INTERVALS[name].total_seconds())}s"
        return f"{VARIABLE_PREFIX}{name}__"

    return _VARIABLE.sub(repl, expr)


@dataclass(frozen=True)
class Query:
    """A PromQL query of a dashboard: a panel target or a variable's selector."""

    where: str
    expr: str


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The template variables."""
    result: list[dict[str, Any]] = dashboard.get("templating", {}).get("list", [])
    return result


def variable_query(variable: dict[str, Any]) -> str:
    """The query text of a query variable (a string or ``{query: ...}``)."""
    q = variable.get("query", "")
    return str(q.get("query", "") if isinstance(q, dict) else q)


def queries(dashboard: dict[str, Any]) -> list[Query]:
    """Every panel target's ``expr`` and every query variable's selector (the
    first argument of ``label_values(...)``)."""
    found = [
        Query(f"{p.get('title', '?')} [{t.get('refId', '?')}]", str(t.get("expr", "")))
        for p in panels(dashboard)
        for t in p.get("targets", [])
    ]
    for v in variables(dashboard):
        if v.get("type") == "query":
            text = variable_query(v)
            m = _LABEL_VALUES.match(text)
            found.append(Query(f"variable {v.get('name')}", m.group(1) if m else text))
    return found


def _parse(expr: str) -> Any | None:
    try:
        return promql_parser.parse(substitute(expr))
    except (ValueError, TypeError):
        return None


def _children(node: Any) -> list[Any]:
    if isinstance(node, promql_parser.Call):
        return list(node.args)
    if isinstance(node, promql_parser.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, promql_parser.AggregateExpr):
        return [node.expr] + ([node.param] if node.param is not None else [])
    if isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        return [node.expr]
    if isinstance(node, promql_parser.SubqueryExpr):
        return [node.expr]
    if isinstance(node, promql_parser.MatrixSelector):
        return [node.vector_selector]
    return []


def _walk(node: Any, calls: tuple[str, ...] = ()) -> Iterator[tuple[Any, tuple[str, ...]]]:
    """Each node with the names of the function calls around it, innermost last."""
    yield node, calls
    inner = (*calls, node.func.name) if isinstance(node, promql_parser.Call) else calls
    for child in _children(node):
        yield from _walk(child, inner)


def _is_counter(name: str) -> bool:
    family = family_of(name)
    if family is not None and family != name:
        return True  # a histogram's _bucket, _count or _sum
    if family is not None:
        return kinds.BY_NAME[family].type == "counter"
    return name.endswith("_total")


# --- the checks ----------------------------------------------------------------

Check = Callable[[dict[str, Any], dict[str, Any]], list[str]]


def template_datasource(dashboard: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """A ``datasource`` variable of type datasource that offers Prometheus."""
    found = [
        v
        for v in variables(dashboard)
        if v.get("name") == "datasource"
        and v.get("type") == "datasource"
        and v.get("query") == "prometheus"
    ]
    return [] if len(found) == 1 else ["no datasource variable of type datasource (prometheus)"]


def panel_datasource(dashboard: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Every panel, target and query variable reads ``${datasource}``."""
    problems = []
    for p in panels(dashboard):
        if p.get("type") == "row":
            continue
        if p.get("datasource") != DATASOURCE:
            problems.append(f"{p.get('title')}: datasource is not ${{datasource}}")
        for t in p.get("targets", []):
            if "datasource" in t and t["datasource"] != DATASOURCE:
                problems.append(f"{p.get('title')} [{t.get('refId')}]: datasource")
    for v in variables(dashboard):
        if v.get("type") == "query" and v.get("datasource") != DATASOURCE:
            problems.append(f"variable {v.get('name')}: datasource is not ${{datasource}}")
    return problems


def panel_title_description(dashboard: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Every panel has a title; every panel but a row has a description."""
    problems = []
    for i, p in enumerate(panels(dashboard)):
        title = str(p.get("title") or "").strip()
        if not title:
            problems.append(f"panel {p.get('id', i)}: no title")
        if p.get("type") != "row" and not str(p.get("description") or "").strip():
            problems.append(f"{title or p.get('id', i)}: no description")
    return problems


def panel_units(dashboard: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Every panel that shows values (all but ``UNITLESS_TYPES``) has a unit."""
    return [
        f"{p.get('title')}: no unit"
        for p in panels(dashboard)
        if p.get("type") not in UNITLESS_TYPES
        and not p.get("fieldConfig", {}).get("defaults", {}).get("unit")
    ]


def panel_thresholds(dashboard: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Every panel but a row or text panel has threshold steps, the first without a
    value (Grafana's base) and the rest in ascending order."""
    problems = []
    for p in panels(dashboard):
        if p.get("type") in NO_QUERY_TYPES:
            continue
        steps = p.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps")
        if not steps or steps[0].get("value") is not None:
            problems.append(f"{p.get('title')}: no thresholds with a base step")
            continue
        values = [s["value"] for s in steps[1:]]
        if any(v is None for v in values) or values != sorted(values):
            problems.append(f"{p.get('title')}: threshold steps out of order")
    return problems


def panel_no_targets(dashboard: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Every panel that shows data has targets, each with expr, legendFormat and a
    refId unique in its panel."""
    problems = []
    for p in panels(dashboard):
        if p.get("type") in NO_QUERY_TYPES:
            continue
        targets = p.get("targets", [])
        if not targets:
            problems.append(f"{p.get('title')}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or not all(refs):
            problems.append(f"{p.get('title')}: refIds missing or repeated")
        for t in targets:
            if not str(t.get("expr") or "").strip() or "legendFormat" not in t:
                problems.append(f"{p.get('title')} [{t.get('refId')}]: no expr or legendFormat")
    return problems


def target_promql(dashboard: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Every query parses as PromQL once Grafana's variables are substituted."""
    return [
        f"{q.where}: does not parse: {q.expr}" for q in queries(dashboard) if _parse(q.expr) is None
    ]


def target_rate_interval(dashboard: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The range of every rate(), irate() and increase() is ``$__rate_interval``."""
    problems = []
    for q in queries(dashboard):
        tree = _parse(q.expr)
        if tree is None:
            continue
        for node, calls in _walk(tree):
            if (
                isinstance(node, promql_parser.MatrixSelector)
                and calls
                and calls[-1] in RATE_FUNCTIONS
                and node.range != RATE_INTERVAL
            ):
                problems.append(f"{q.where}: {calls[-1]}() without [$__rate_interval]")
    return problems


def target_counter_agg(dashboard: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """A counter (``_total``) or a histogram's ``_bucket``/``_count``/``_sum`` is
    read only inside rate(), irate(), increase() or resets()."""
    problems = []
    for q in queries(dashboard):
        if q.where.startswith("variable "):
            continue  # label_values() reads labels, not values
        tree = _parse(q.expr)
        if tree is None:
            continue
        for node, calls in _walk(tree):
            if (
                isinstance(node, promql_parser.VectorSelector)
                and node.name
                and _is_counter(node.name)
                and not (calls and calls[-1] in COUNTER_FUNCTIONS)
            ):
                problems.append(f"{q.where}: counter {node.name} outside rate()/increase()")
    return problems


def target_job_instance(dashboard: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Every exporter selector carries the config's ``selector`` (the runtime
    contract's ``sla.runtimeSelector``); no ``job`` matcher other than theirs and
    no ``instance`` matcher with a literal value (a variable is fine)."""
    allowed_jobs = {
        m for s in (config["selector"], config["sla"]["runtimeSelector"]) for m in matchers_of(s)
    }
    problems = []
    for q in queries(dashboard):
        if _parse(q.expr) is None:
            continue
        text = substitute(q.expr)
        problems += [f"{q.where}: {p}" for p in selector_problems(text, config)]
        for sel in selectors(text):
            for name, op, value in sel.matchers:
                if name == "job" and (name, op, value) not in allowed_jobs:
                    problems.append(f"{q.where}: hard-coded job matcher {value!r}")
                if name == "instance" and not value.startswith(VARIABLE_PREFIX):
                    problems.append(f"{q.where}: hard-coded instance matcher {value!r}")
    return problems


def metrics_exist(
    dashboard: dict[str, Any], config: dict[str, Any], recorded: frozenset[str] = frozenset()
) -> list[str]:
    """Every metric a query reads is in the catalogue, the runtime contract,
    Prometheus' own series or a recording rule of the bundle (``recorded``)."""
    problems = []
    for q in queries(dashboard):
        if _parse(q.expr) is None:
            continue
        names = unknown_names(substitute(q.expr), set(recorded))
        problems += [f"{q.where}: unknown metric {n}" for n in names]
    return problems


CHECKS: dict[str, Check] = {
    "template-datasource": template_datasource,
    "panel-datasource": panel_datasource,
    "panel-title-description": panel_title_description,
    "panel-units": panel_units,
    "panel-thresholds": panel_thresholds,
    "panel-no-targets": panel_no_targets,
    "target-promql": target_promql,
    "target-rate-interval": target_rate_interval,
    "target-counter-agg": target_counter_agg,
    "target-job-instance": target_job_instance,
}
"""The dashboard-linter rules, by name (``metrics_exist`` needs the recorded names
and is called on its own)."""
