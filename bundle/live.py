"""Live queries: every panel query and every variable query of every dashboard,
run through a real Prometheus' HTTP API with the template variables resolved
to real values, each required to return data.

    python -m bundle.live --prometheus URL [--scrape-interval 5s] [--window S]
                          [--built] [--expected FILE] [--timeout S] [--verbose]

The dashboards are evaluated fresh from their Jsonnet sources (``--built``:
read ``dashboards/build/*.json`` instead). For each dashboard, in order:

- its query variables are resolved the way Grafana resolves them:
  ``label_values(<selector>, <label>)`` through
  ``/api/v1/label/<label>/values?match[]=<selector>`` over the window (the
  selector may use earlier variables: they are substituted first),
  ``label_values(<label>)`` without a selector, ``query_result(<expr>)`` as an
  instant query, ``metrics(<regex>)`` from the metric names; a variable's
  ``regex`` filters (and with a group, extracts) the values; ``custom``,
  ``constant`` and ``textbox`` variables take their options; ``datasource``
  variables play no part in PromQL;
- its panel targets run with the variables substituted as Grafana does for
  Prometheus (``substitute``): a multi-value or include-All variable as a regex
  alternation of its escaped values (All counts as every value), a
  single-value one as its escaped current value (or the first), and the
  interval variables as Grafana computes them (``Timing``);
  ``range: true`` runs ``/api/v1/query_range`` over the window at the step,
  ``instant: true`` runs ``/api/v1/query`` at its end (both when both are
  set; range when neither is).

A query returns data when the answer holds at least one series (a rate of an
existing counter that is 0 is data; only absent series are empty). A query
that Prometheus refuses (a parse error, a bad variable, an unreachable server)
always fails. An empty query fails unless the committed list of queries
expected to be empty on a healthy stack (``live_expected_empty.yml`` beside
this module, keyed by dashboard uid and panel title, optionally refId, or by
variable name, each with a reason) names it, or it reads a recorded series
whose rule is not due yet: not evaluated, or in a group whose interval is
longer than Prometheus' uptime (a 2m group shortly after the start; its one
evaluation may have preceded its inputs). Those are counted as waiting, as the
demo's rule check counts such rules apart. An entry that names no query, or
whose query returned data, is stale and fails too, so the list only shrinks.

The command prints one line per expected-empty, waiting, empty, failing and
stale query and then the figures::

    dashboards live: 9 dashboards, 300 queries (15 variables), 267 returned data,
    30 expected empty (listed), 3 waiting for rules not due yet,
    0 unexpectedly empty, 0 failing, 0 stale entries

Exit 0 when nothing is unexpectedly empty, failing or stale, else 1 (2 for bad
arguments). The demo's ``--check`` runs it against the demo's Prometheus.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import _jsonnet
import yaml

from exporter.model import parse_duration

from .build import ROOT
from .dashboards import BUILD_DIR
from .lint import panels, variable_query, variables

EXPECTED_EMPTY = Path(__file__).with_name("live_expected_empty.yml")
"""The committed list of queries expected to be empty on a healthy stack."""

DEFAULT_MAX_DATA_POINTS = 1000
"""Grafana's points per series when a panel does not set ``maxDataPoints`` (it
uses the panel's width in pixels; a full-width panel is about this wide)."""

MAX_POINTS = 11000
"""Prometheus refuses a range query of more points per series than this."""

DEFAULT_WINDOW = 6 * 3600.0
"""The dashboards' default time range (``now-6h``), the longest window used."""

# Grafana's variable syntaxes: $name, ${name}, ${name:format}, [[name]], [[name:format]]
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::([^}]+))?\}|\[\[(\w+)(?::(\w+))?\]\]")
_CALL = re.compile(r"^\s*(label_values|query_result|metrics)\s*\((.*)\)\s*$", re.S)
_LABEL = re.compile(r"^\s*(\w+)\s*$")
_LAST_LABEL = re.compile(r"^(.*),\s*(\w+)\s*$", re.S)
_JS_REGEX = re.compile(r"^/(.*)/([a-z]*)$", re.S)
_REGEX_SPECIAL = re.compile(r"[$^*{}\[\]'+?.()|]")
_JS_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|{}\[\]/]")


class QueryError(Exception):
    """Prometheus refused a request or could not be reached."""


# --- Grafana's interval variables -------------------------------------------


# (below ms, nice ms): Grafana's kbn.roundInterval table
# fmt: off
_ROUND_MS = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000),
    (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000),
    (1050000, 600000), (2100000, 1200000), (2700000, 1800000), (5400000, 3600000),
    (9000000, 7200000), (16200000, 10800000), (32400000, 21600000),
    (86400000, 43200000), (604800000, 86400000), (1814400000, 604800000),
    (3628800000, 2592000000),
)
# fmt: on


def round_interval(seconds: float) -> float:
    """A raw interval rounded to the nice one Grafana picks (``kbn.roundInterval``)."""
    ms = seconds * 1000
    for below, nice in _ROUND_MS:
        if ms < below:
            return nice / 1000
    return 31536000.0


def duration(seconds: float) -> str:
    """A Prometheus duration for a number of seconds: the largest unit that divides
    it (``1m``, ``90s``, ``500ms``)."""
    ms = round(seconds * 1000)
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True)
class Timing:
    """The time range of a dashboard and what Grafana derives from it.

    ``window`` is the range in seconds, ``scrape`` the datasource's scrape
    interval (Grafana's ``timeInterval``, the minimum step), ``step`` the query
    step and ``$__interval``."""

    window: float
    scrape: float
    step: float

    @classmethod
    def for_window(
        cls,
        window: float,
        scrape: float,
        max_data_points: int = DEFAULT_MAX_DATA_POINTS,
        min_interval: float | None = None,
    ) -> Timing:
        """Grafana's step for a window: the window over ``max_data_points`` rounded,
        at least the scrape interval (or the panel's ``min_interval``), and never
        more than Prometheus' 11,000 points."""
        step = max(round_interval(window / max_data_points), min_interval or scrape)
        step = max(step, math.ceil(window / MAX_POINTS))
        return cls(window=window, scrape=scrape, step=step)

    @property
    def rate_interval(self) -> float:
        """``$__rate_interval``: max(4 * scrape interval, step + scrape interval)."""
        return max(4 * self.scrape, self.step + self.scrape)

    def builtins(self) -> dict[str, str]:
        """Grafana's global variables that reach PromQL, by name."""
        rng = round(self.window)
        return {
            "__interval": duration(self.step),
            "__interval_ms": str(round(self.step * 1000)),
            "__rate_interval": duration(self.rate_interval),
            "__rate_interval_ms": str(round(self.rate_interval * 1000)),
            "__range": f"{rng}s",
            "__range_s": str(rng),
            "__range_ms": str(rng * 1000),
        }


# --- substitution ------------------------------------------------------------


def regex_escape(value: str) -> str:
    """A value escaped for a regex matcher inside a PromQL string, as Grafana's
    ``prometheusSpecialRegexEscape``: backslashes doubled twice, regex
    metacharacters behind a (doubled) backslash."""
    value = value.replace("\\", "\\\\\\\\")
    return _REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(0), value)


def regular_escape(value: str) -> str:
    """A single value escaped as Grafana's ``prometheusRegularEscape``: backslashes
    doubled, single quotes escaped."""
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def _js_regex_escape(value: str) -> str:
    return _JS_REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


@dataclass(frozen=True)
class Value:
    """The values a variable stands for and whether it interpolates as a list
    (``multi`` or ``includeAll``) or as one value."""

    values: tuple[str, ...]
    multi: bool = True


def _format(value: Value, fmt: str | None) -> str:
    """One variable interpolated: Grafana's Prometheus default, or an explicit
    ``${name:format}``."""
    vals = list(value.values)
    if fmt is None:
        if not value.multi:
            return regular_escape(vals[0]) if vals else ""
        escaped = [regex_escape(v) for v in vals]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt in ("raw", "text"):
        return ",".join(vals) if fmt == "raw" else " + ".join(vals)
    if fmt == "csv":
        return ",".join(vals)
    if fmt == "pipe":
        return "|".join(vals)
    if fmt == "regex":
        escaped = [_js_regex_escape(v) for v in vals]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "glob":
        return vals[0] if len(vals) == 1 else "{" + ",".join(vals) + "}"
    if fmt == "json":
        return json.dumps(vals[0] if len(vals) == 1 else vals)
    raise QueryError(f"variable format {fmt!r} is not supported")


def substitute(expr: str, values: Mapping[str, Value], timing: Timing) -> str:
    """The expression as Grafana sends it to Prometheus: every ``$name``,
    ``${name}``, ``${name:format}`` and ``[[name]]`` of a known variable replaced by
    its values (see ``Value``), the interval variables by ``timing``'s; unknown
    names are left as they are, as Grafana leaves them (Prometheus then refuses
    the query)."""
    builtins = timing.builtins()

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(5)
        if name in builtins:
            return builtins[name]
        if name in values:
            return _format(values[name], fmt)
        return m.group(0)

    return _VARIABLE.sub(repl, expr)


# --- Prometheus' HTTP API ----------------------------------------------------


class Api(Protocol):
    """What the check needs of Prometheus: a GET of an API path returning ``data``."""

    def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        """``data`` of the answer; ``QueryError`` when Prometheus refuses it."""
        ...


@dataclass
class HttpApi:
    """Prometheus' HTTP API at ``url`` (``http://host:port``)."""

    url: str
    timeout: float = 10.0

    def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        """GET ``path`` with ``params``; the answer's ``data``."""
        query = urllib.parse.urlencode(list(params))
        full = f"{self.url.rstrip('/')}{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(full, timeout=self.timeout) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as e:
            try:
                error = json.load(e).get("error", str(e))
            except ValueError:
                error = str(e)
            raise QueryError(str(error)) from e
        except (OSError, ValueError) as e:
            raise QueryError(f"{full}: {e}") from e
        if body.get("status") != "success":
            raise QueryError(str(body.get("error", body)))
        return body["data"]

    def uptime(self) -> float:
        """Seconds since this Prometheus started."""
        return uptime(self, time.time())


# --- variables ---------------------------------------------------------------


def _split_label_values(args: str) -> tuple[str | None, str]:
    """``label_values``' arguments: (selector or None, label)."""
    m = _LABEL.match(args)
    if m:
        return None, m.group(1)
    m = _LAST_LABEL.match(args)
    if not m:
        raise QueryError(f"label_values({args}): cannot read the label")
    return m.group(1).strip(), m.group(2)


def _apply_regex(variable: Mapping[str, Any], found: Iterable[str]) -> list[str]:
    """The values kept by the variable's ``regex`` (``/re/flags``; a group extracts)."""
    pattern = str(variable.get("regex") or "")
    if not pattern:
        return list(found)
    m = _JS_REGEX.match(pattern)
    source, flags = (m.group(1), m.group(2)) if m else (pattern, "")
    compiled = re.compile(source, re.I if "i" in flags else 0)
    kept = []
    for v in found:
        hit = compiled.search(v)
        if hit:
            groups = hit.groupdict()
            kept.append(
                groups.get("value")
                or groups.get("text")
                or (hit.group(1) if compiled.groups else v)
            )
    return kept


def _sorted(variable: Mapping[str, Any], found: list[str]) -> list[str]:
    """Values in the variable's ``sort`` order (alphabetical, numerical, case-insensitive)."""
    order = int(variable.get("sort") or 0)
    unique = list(dict.fromkeys(found))
    if order in (1, 2):
        return sorted(unique, reverse=order == 2)
    if order in (3, 4):

        def number(v: str) -> float:
            m = re.search(r"-?\d+(\.\d+)?", v)
            return float(m.group(0)) if m else math.inf

        return sorted(unique, key=number, reverse=order == 4)
    if order in (5, 6):
        return sorted(unique, key=str.lower, reverse=order == 6)
    return unique


def resolve(
    api: Api,
    variable: Mapping[str, Any],
    values: Mapping[str, Value],
    timing: Timing,
    end: float,
) -> tuple[str, Value]:
    """A variable's values (and the query that found them, substituted) with the
    earlier variables' ``values``; ``QueryError`` when Prometheus refuses it."""
    kind = variable.get("type")
    multi = bool(variable.get("multi")) or bool(variable.get("includeAll"))
    if kind in ("custom", "interval", "constant", "textbox"):
        text = variable_query(dict(variable))
        found = [v.strip() for v in text.split(",")] if kind in ("custom", "interval") else [text]
        return text, Value(_chosen(variable, [v for v in found if v], multi), multi)
    if kind != "query":
        raise QueryError(f"variable type {kind!r} is not supported")
    text = substitute(variable_query(dict(variable)), values, timing)
    window = [("start", f"{end - timing.window:.3f}"), ("end", f"{end:.3f}")]
    m = _CALL.match(text)
    if m is None:  # a bare expression is Grafana's query_result()
        m = _CALL.match(f"query_result({text})")
        assert m is not None
    func, args = m.group(1), m.group(2)
    if func == "label_values":
        selector, label = _split_label_values(args)
        match = [("match[]", selector)] if selector else []
        found = [str(v) for v in api.get(f"/api/v1/label/{label}/values", [*match, *window])]
    elif func == "metrics":
        names = [str(v) for v in api.get("/api/v1/label/__name__/values", window)]
        found = [n for n in names if re.search(args.strip(), n)]
    else:
        data = api.get("/api/v1/query", [("query", args), ("time", f"{end:.3f}")])
        found = [_result_text(r) for r in data.get("result", [])]
    kept = _sorted(variable, _apply_regex(variable, found))
    return text, Value(_chosen(variable, kept, multi), multi)


def _chosen(variable: Mapping[str, Any], options: list[str], multi: bool) -> tuple[str, ...]:
    """What the variable stands for: every option when it is multi-value or has All
    (All is every value), else its saved current value when still an option, else
    the first."""
    if multi or not options:
        return tuple(options)
    current = variable.get("current") or {}
    chosen = current.get("value") if isinstance(current, dict) else None
    return (chosen,) if isinstance(chosen, str) and chosen in options else (options[0],)


def _result_text(r: Mapping[str, Any]) -> str:
    """Grafana's text of one query_result() series: ``name{labels} value ts``."""
    metric = dict(r.get("metric", {}))
    name = metric.pop("__name__", "")
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()))
    ts, value = r.get("value", ["", ""])
    return f"{name}{{{labels}}} {value} {int(float(ts) * 1000) if ts else ''}"


# --- the check ---------------------------------------------------------------

Outcome = Literal["data", "empty", "waiting", "error"]
"""A query's outcome; ``waiting``: empty, and it reads a recorded series whose rule
is not due yet (``not_due``), so it cannot be required to have data yet."""


@dataclass(frozen=True)
class Result:
    """One query's outcome: a panel target (``panel``, ``ref_id``) or a variable."""

    dashboard: str
    panel: str | None
    ref_id: str | None
    variable: str | None
    expr: str
    outcome: Outcome
    detail: str = ""

    @property
    def where(self) -> str:
        """``uid / panel [refId]`` or ``uid / variable name``."""
        if self.variable is not None:
            return f"{self.dashboard} / variable {self.variable}"
        return f"{self.dashboard} / {self.panel} [{self.ref_id}]"


@dataclass(frozen=True)
class Entry:
    """A query expected to be empty on a healthy stack, and why."""

    dashboard: str
    reason: str
    panel: str | None = None
    ref_id: str | None = None
    variable: str | None = None

    def matches(self, r: Result) -> bool:
        """Whether this entry names the result's query."""
        if r.dashboard != self.dashboard:
            return False
        if self.variable is not None:
            return r.variable == self.variable
        return r.panel == self.panel and self.ref_id in (None, r.ref_id)

    @property
    def where(self) -> str:
        """The entry's key as text."""
        if self.variable is not None:
            return f"{self.dashboard} / variable {self.variable}"
        return f"{self.dashboard} / {self.panel}" + (f" [{self.ref_id}]" if self.ref_id else "")


def load_expected(path: Path = EXPECTED_EMPTY) -> list[Entry]:
    """The expected-empty entries of a YAML list (``dashboard``, ``panel`` or
    ``variable``, optional ``refId``, ``reason``); ``ValueError`` on a bad one."""
    raw = yaml.safe_load(path.read_text()) if path.exists() else None
    entries = []
    for i, item in enumerate(raw or []):
        where = f"{path.name}[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: not a mapping")
        unknown = set(item) - {"dashboard", "panel", "refId", "variable", "reason"}
        if unknown:
            raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
        if not str(item.get("dashboard") or "").strip():
            raise ValueError(f"{where}: no dashboard uid")
        if not str(item.get("reason") or "").strip():
            raise ValueError(f"{where}: no reason")
        if ("panel" in item) == ("variable" in item):
            raise ValueError(f"{where}: give either a panel or a variable")
        if "refId" in item and "panel" not in item:
            raise ValueError(f"{where}: refId without a panel")
        entries.append(
            Entry(
                dashboard=str(item["dashboard"]),
                reason=" ".join(str(item["reason"]).split()),
                panel=str(item["panel"]) if "panel" in item else None,
                ref_id=str(item["refId"]) if "refId" in item else None,
                variable=str(item["variable"]) if "variable" in item else None,
            )
        )
    return entries


def _has_data(data: Any) -> bool:
    if data.get("resultType") in ("scalar", "string"):
        return True
    return any(
        s.get("values") or s.get("value") or s.get("histograms") or s.get("histogram")
        for s in data.get("result", [])
    )


def _panel_timing(panel: Mapping[str, Any], target: Mapping[str, Any], base: Timing) -> Timing:
    """The timing of one target: the panel's ``maxDataPoints`` and the target's or
    the panel's minimum ``interval`` (a duration; a variable in it is ignored)."""
    points = int(panel.get("maxDataPoints") or DEFAULT_MAX_DATA_POINTS)
    minimum = None
    for where in (target, panel):
        text = str(where.get("interval") or "")
        if text and "$" not in text:
            minimum = parse_duration(text)
            break
    if points == DEFAULT_MAX_DATA_POINTS and minimum is None:
        return base
    return Timing.for_window(base.window, base.scrape, points, minimum)


def _modes(target: Mapping[str, Any]) -> list[Literal["range", "instant"]]:
    modes: list[Literal["range", "instant"]] = []
    if target.get("range") or not target.get("instant"):
        modes.append("range")
    if target.get("instant"):
        modes.append("instant")
    return modes


def run_target(
    api: Api, expr: str, target: Mapping[str, Any], timing: Timing, end: float
) -> tuple[Outcome, str]:
    """Run one (substituted) target the way its ``range``/``instant`` flags ask;
    data only when every mode returned a series."""
    empty = []
    for mode in _modes(target):
        try:
            if mode == "range":
                step = timing.step
                stop = math.floor(end / step) * step
                params = [
                    ("query", expr),
                    ("start", f"{stop - timing.window:.3f}"),
                    ("end", f"{stop:.3f}"),
                    ("step", f"{step:g}"),
                ]
                data = api.get("/api/v1/query_range", params)
            else:
                data = api.get("/api/v1/query", [("query", expr), ("time", f"{end:.3f}")])
        except QueryError as e:
            return "error", f"{mode}: {e}"
        if not _has_data(data):
            empty.append(mode)
    if empty:
        return "empty", f"no series ({', '.join(empty)})"
    return "data", ""


def uptime(api: Api, now: float) -> float:
    """Seconds from Prometheus' start to ``now``."""
    started = str(api.get("/api/v1/status/runtimeinfo")["startTime"])
    return now - datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()


def not_due(api: Api, now: float) -> frozenset[str]:
    """The series recorded by rules that may not have data yet: not evaluated yet,
    or in a group whose interval is longer than Prometheus has been running (at
    most one evaluation, which may have run before its inputs had samples), as the
    demo's rule check counts them."""
    running = uptime(api, now)
    groups = api.get("/api/v1/rules", [("type", "record")]).get("groups", [])
    return frozenset(
        str(r["name"])
        for g in groups
        for r in g.get("rules", [])
        if r.get("type") == "recording"
        and (r.get("health") == "unknown" or float(g.get("interval", 0)) > running)
    )


def _waiting(outcome: Outcome, expr: str, pending: frozenset[str]) -> list[str]:
    """The not-yet-evaluated recorded series an empty query reads."""
    if outcome != "empty":
        return []
    return sorted(n for n in pending if re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])", expr))


def check_dashboard(
    api: Api,
    dashboard: Mapping[str, Any],
    timing: Timing,
    end: float,
    pending: frozenset[str] = frozenset(),
) -> list[Result]:
    """Every variable of a dashboard resolved in order, then every panel target
    run with them; one result per variable query and per target (``pending``: the
    series of recording rules not evaluated yet, see ``Outcome``)."""
    uid = str(dashboard.get("uid"))
    results: list[Result] = []
    values: dict[str, Value] = {}
    lacking: dict[str, str] = {}
    for v in variables(dict(dashboard)):
        name = str(v.get("name"))
        if v.get("type") == "datasource":
            continue
        multi = bool(v.get("multi")) or bool(v.get("includeAll"))
        try:
            text, value = resolve(api, v, values, timing, end)
        except QueryError as e:
            values[name] = Value((), multi)
            lacking[name] = "failed"
            results.append(Result(uid, None, None, name, variable_query(v), "error", str(e)))
            continue
        values[name] = value
        if not value.values:
            lacking[name] = "has no values"
        if v.get("type") == "query":
            outcome: Outcome = "data" if value.values else "empty"
            shown = ", ".join(value.values[:5]) + (" …" if len(value.values) > 5 else "")
            if waiting := _waiting(outcome, text, pending):
                outcome, shown = "waiting", f"rules not due yet: {', '.join(waiting)}"
            results.append(Result(uid, None, None, name, text, outcome, shown or "no values"))
    for p in panels(dict(dashboard)):
        for t in p.get("targets", []):
            raw = str(t.get("expr", ""))
            tm = _panel_timing(p, t, timing)
            try:
                expr = substitute(raw, values, tm)
            except QueryError as e:
                expr, (outcome, detail) = raw, ("error", str(e))
            else:
                outcome, detail = run_target(api, expr, t, tm, end)
            if waiting := _waiting(outcome, expr, pending):
                outcome, detail = "waiting", f"rules not due yet: {', '.join(waiting)}"
            used = [n for n in lacking if re.search(rf"\$\{{?{n}\b|\[\[{n}\b", raw)]
            if outcome == "empty" and used:
                detail += "; " + ", ".join(f"variable {n} {lacking[n]}" for n in used)
            results.append(
                Result(
                    uid,
                    str(p.get("title", "?")),
                    str(t.get("refId", "?")),
                    None,
                    expr,
                    outcome,
                    detail,
                )
            )
    return results


def _line(expr: str) -> str:
    """An expression on one line (its whitespace runs collapsed)."""
    return " ".join(expr.split())


@dataclass
class Report:
    """The results of every dashboard against the expected-empty entries."""

    dashboards: int
    results: list[Result]
    expected: list[Entry]
    listed: list[tuple[Result, Entry]] = field(init=False)
    """Empty results that an entry names, with the entry."""
    stale: list[tuple[Entry, str]] = field(init=False)
    """Entries that name no query or whose query returned data, and which."""
    unexpected: list[Result] = field(init=False)
    """Empty results that no entry names."""

    def __post_init__(self) -> None:
        self.listed, self.stale, self.unexpected = [], [], []
        for entry in self.expected:
            named = [r for r in self.results if entry.matches(r)]
            with_data = [r.where for r in named if r.outcome == "data"]
            if not named:
                self.stale.append((entry, "names no query of the dashboards"))
            elif with_data:
                self.stale.append((entry, f"returned data: {', '.join(with_data)}"))
        for r in self.results:
            if r.outcome != "empty":
                continue
            naming = next((e for e in self.expected if e.matches(r)), None)
            if naming is None:
                self.unexpected.append(r)
            else:
                self.listed.append((r, naming))

    @property
    def with_data(self) -> list[Result]:
        """Queries that returned data."""
        return [r for r in self.results if r.outcome == "data"]

    @property
    def failing(self) -> list[Result]:
        """Queries Prometheus refused."""
        return [r for r in self.results if r.outcome == "error"]

    @property
    def waiting(self) -> list[Result]:
        """Empty queries of recorded series whose rules are not due yet (``not_due``)."""
        return [r for r in self.results if r.outcome == "waiting"]

    @property
    def ok(self) -> bool:
        """Nothing unexpectedly empty, failing or stale."""
        return not self.unexpected and not self.failing and not self.stale

    def summary(self) -> str:
        """The figures, one line."""
        n_vars = sum(r.variable is not None for r in self.results)
        return (
            f"dashboards live: {self.dashboards} dashboards, {len(self.results)} queries"
            f" ({n_vars} variables), {len(self.with_data)} returned data,"
            f" {len(self.listed)} expected empty (listed), {len(self.waiting)} waiting for"
            f" rules not due yet, {len(self.unexpected)} unexpectedly empty,"
            f" {len(self.failing)} failing, {len(self.stale)} stale entries"
        )

    def lines(self, verbose: bool = False) -> list[str]:
        """What to print: expected empties with their reasons, then every problem,
        then the figures (``verbose``: every query and its outcome first)."""
        out = []
        if verbose:
            out += [f"  {r.outcome}: {r.where}: {_line(r.expr)}  {r.detail}" for r in self.results]
        out += [f"  expected empty: {r.where}: {e.reason}" for r, e in self.listed]
        out += [f"  waiting: {r.where}: {r.detail}" for r in self.waiting]
        out += [f"  EMPTY: {r.where}: {r.detail}: {_line(r.expr)}" for r in self.unexpected]
        out += [f"  FAILING: {r.where}: {r.detail}: {_line(r.expr)}" for r in self.failing]
        out += [f"  STALE expected-empty entry: {e.where}: {why}" for e, why in self.stale]
        return [*out, self.summary()]


def check(
    api: Api,
    dashboards: Iterable[Mapping[str, Any]],
    timing: Timing,
    expected: Sequence[Entry] = (),
    end: float | None = None,
) -> Report:
    """Every dashboard's queries at ``end`` (default now) over ``timing``'s window."""
    end = time.time() if end is None else end
    boards = list(dashboards)
    pending = not_due(api, end)
    results = [r for d in boards for r in check_dashboard(api, d, timing, end, pending)]
    return Report(len(boards), results, list(expected))


def load_dashboards(built: bool = False) -> list[dict[str, Any]]:
    """The dashboards, sorted by uid: evaluated fresh from their Jsonnet sources
    (the bundle's ``grafanaDashboards`` alone, as ``bundle.dashboards.evaluate()``
    has them, without evaluating the rules), or ``dashboards/build/*.json``."""
    if built:
        found = [json.loads(p.read_text()) for p in sorted(BUILD_DIR.glob("*.json"))]
    else:
        snippet = "(import 'bundle/mixin.libsonnet').grafanaDashboards"
        text = _jsonnet.evaluate_snippet("<dashboards>", snippet, jpathdir=[str(ROOT)])
        found = list(json.loads(text).values())
    return sorted(found, key=lambda d: str(d.get("uid")))


async def check_in_subprocess(prometheus: str, scrape_interval: str) -> bool:
    """``python -m bundle.live`` against ``prometheus`` (a URL, or ``host:port``) in a
    child process (the Jsonnet evaluation would otherwise hold the caller's event
    loop), its output on this process' stdout; whether it passed."""
    url = prometheus if "://" in prometheus else f"http://{prometheus}"
    sys.stdout.flush()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bundle.live",
        "--prometheus",
        url,
        "--scrape-interval",
        scrape_interval,
    )
    return await proc.wait() == 0


def main(argv: list[str] | None = None) -> int:
    """Command line: check every dashboard against a Prometheus; print the figures."""
    p = argparse.ArgumentParser(
        prog="python -m bundle.live",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--prometheus", required=True, help="Prometheus' URL (http://host:port)")
    p.add_argument("--scrape-interval", default="15s", help="its scrape interval (default 15s)")
    p.add_argument(
        "--window",
        type=float,
        help="seconds of the range (default: Prometheus' uptime, at most 6h)",
    )
    p.add_argument("--built", action="store_true", help="read dashboards/build/*.json")
    p.add_argument("--expected", type=Path, default=EXPECTED_EMPTY, help="expected-empty list")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument("--verbose", action="store_true", help="print every query and its outcome")
    args = p.parse_args(argv)
    try:
        scrape = parse_duration(args.scrape_interval)
        expected = load_expected(args.expected)
    except ValueError as e:
        p.error(str(e))
    api = HttpApi(args.prometheus, args.timeout)
    try:
        window = args.window or min(api.uptime(), DEFAULT_WINDOW)
    except QueryError as e:
        print(f"dashboards live: {e}", file=sys.stderr)
        return 1
    report = check(api, load_dashboards(args.built), Timing.for_window(window, scrape), expected)
    for line in report.lines(args.verbose):
        print(line, flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
