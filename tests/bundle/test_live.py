"""The live-query check (bundle/live.py) without a stack: Grafana's substitution
of multi-value, single-value and interval variables, its step and
``$__rate_interval``, the resolution of chained variables through a fake
Prometheus API, the outcomes (data, empty, listed, failing, stale) and the
committed expected-empty list. The check against a real Prometheus runs in
tests/test_demo.py."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from bundle import dashboards, lint, live
from bundle.live import Entry, Timing, Value

FIVE = Timing(window=300, scrape=5, step=5)


# --- escaping and substitution -------------------------------------------------


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("cache", "cache"),
        ("venue-sim", "venue-sim"),
        ("feature_store", "feature_store"),
        ("a.b", r"a\\.b"),
        ("x+y(1)", r"x\\+y\\(1\\)"),
        ("a|b", r"a\\|b"),
        ("^$*?{}[]", r"\\^\\$\\*\\?\\{\\}\\[\\]"),
        ("back\\slash", r"back\\\\slash"),
    ],
)
def test_regex_escape_is_grafanas(value: str, escaped: str) -> None:
    assert live.regex_escape(value) == escaped


def test_escaped_values_match_themselves_once_promql_unquotes_them() -> None:
    # PromQL unquotes the string ("\\." -> "\."), RE2 then matches the literal value
    for value in ("a.b", "x+y(1)", "a|b", "^$*?{}[]", "back\\slash", "it's"):
        regex = live.regex_escape(value).encode().decode("unicode_escape")
        assert re.fullmatch(regex, value), (value, regex)
        assert not re.fullmatch(regex, value + "x")


def test_regular_escape_is_grafanas() -> None:
    assert live.regular_escape("cache") == "cache"
    assert live.regular_escape("back\\slash") == "back\\\\slash"
    assert live.regular_escape("it's") == "it\\\\'s"


def test_multi_value_variables_become_an_alternation_of_escaped_values() -> None:
    values = {"target": Value(("cache", "a.b")), "kind": Value(("redis",))}
    expr = 'up{kind=~"$kind", target=~"${target}"}'
    assert live.substitute(expr, values, FIVE) == r'up{kind=~"redis", target=~"(cache|a\\.b)"}'


def test_single_value_variable_is_its_value_and_unknown_names_stay() -> None:
    values = {"session": Value(("venue",), multi=False)}
    expr = 'x{session="$session", other="$other", s2="[[session]]"}'
    assert live.substitute(expr, values, FIVE) == 'x{session="venue", other="$other", s2="venue"}'


def test_a_longer_name_is_not_a_shorter_variable() -> None:
    values = {"kind": Value(("redis",))}
    assert live.substitute("$kind_total $kind", values, FIVE) == "$kind_total redis"


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("pipe", "a.b|c"),
        ("csv", "a.b,c"),
        ("raw", "a.b,c"),
        ("regex", r"(a\.b|c)"),
        ("glob", "{a.b,c}"),
        ("json", '["a.b", "c"]'),
    ],
)
def test_explicit_formats(fmt: str, text: str) -> None:
    values = {"v": Value(("a.b", "c"))}
    assert live.substitute(f"${{v:{fmt}}}", values, FIVE) == text


def test_an_unknown_format_is_an_error() -> None:
    with pytest.raises(live.QueryError):
        live.substitute("${v:percentencode_nope}", {"v": Value(("a",))}, FIVE)


def test_an_empty_multi_value_variable_matches_only_the_empty_string() -> None:
    assert live.substitute('x{t=~"$t"}', {"t": Value(())}, FIVE) == 'x{t=~"()"}'


# --- Grafana's intervals -------------------------------------------------------------


def test_rate_interval_is_four_scrapes_or_step_plus_scrape() -> None:
    assert Timing(window=60, scrape=5, step=5).rate_interval == 20
    assert Timing(window=3600, scrape=5, step=30).rate_interval == 35
    assert Timing(window=21600, scrape=15, step=20).rate_interval == 60


def test_builtins_of_a_window() -> None:
    b = Timing(window=90.4, scrape=5, step=5).builtins()
    assert b["__rate_interval"] == "20s"
    assert b["__interval"] == "5s"
    assert b["__interval_ms"] == "5000"
    assert b["__range"] == "90s"
    assert b["__range_s"] == "90"
    assert b["__range_ms"] == "90000"
    expr = "rate(x[$__rate_interval]) + increase(x[$__range]) + avg_over_time(x[$__interval])"
    assert live.substitute(expr, {}, Timing(90, 5, 5)) == (
        "rate(x[20s]) + increase(x[90s]) + avg_over_time(x[5s])"
    )


def test_step_is_the_rounded_window_share_at_least_the_scrape_interval() -> None:
    assert Timing.for_window(60, 5).step == 5  # 60 ms a point: the scrape interval wins
    assert Timing.for_window(6 * 3600, 15).step == 20  # 21.6 s rounds to 20 s
    assert Timing.for_window(24 * 3600, 15).step == 60  # 86.4 s rounds to 1 m
    assert Timing.for_window(3600, 15, max_data_points=100).step == 30  # 36 s -> 30 s
    assert Timing.for_window(3600, 15, min_interval=60).step == 60
    assert Timing.for_window(3600, 5).rate_interval == 20


@pytest.mark.parametrize(
    ("seconds", "text"), [(20, "20s"), (60, "1m"), (90, "90s"), (0.5, "500ms"), (7200, "2h")]
)
def test_durations(seconds: float, text: str) -> None:
    assert live.duration(seconds) == text


def test_round_interval_follows_grafana() -> None:
    assert live.round_interval(0.012) == 0.01
    assert live.round_interval(1.2) == 1
    assert live.round_interval(12) == 10
    assert live.round_interval(16) == 15
    assert live.round_interval(40) == 30
    assert live.round_interval(100) == 120
    assert live.round_interval(10**9) == 31536000


# --- variables and queries against a fake API ------------------------------------------


class FakeApi:
    """Answers from a handler per path; records every request."""

    def __init__(self, handler: Callable[[str, dict[str, list[str]]], Any]) -> None:
        self.handler = handler
        self.calls: list[tuple[str, dict[str, list[str]]]] = []

    def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        by_name: dict[str, list[str]] = {}
        for k, v in params:
            by_name.setdefault(k, []).append(v)
        self.calls.append((path, by_name))
        return self.handler(path, by_name)


def _vector(*labels: dict[str, str]) -> dict[str, Any]:
    return {"resultType": "vector", "result": [{"metric": m, "value": [1, "1"]} for m in labels]}


def _matrix(*labels: dict[str, str]) -> dict[str, Any]:
    return {
        "resultType": "matrix",
        "result": [{"metric": m, "values": [[1, "0"], [6, "0"]]} for m in labels],
    }


def _variable(name: str, query: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "query": {"query": query, "qryType": 1},
        "multi": True,
        "includeAll": True,
        **extra,
    }


def test_chained_variables_resolve_in_order_with_earlier_values_substituted() -> None:
    def handler(path: str, p: dict[str, list[str]]) -> Any:
        if path == "/api/v1/label/kind/values":
            assert p["match[]"] == ['tradeops_up{job="tradeops"}']
            return ["redis", "fix"]
        if path == "/api/v1/label/target/values":
            assert p["match[]"] == ['tradeops_up{job="tradeops", kind=~"(fix|redis)"}']
            return ["cache", "venue", "drop-me"]
        raise AssertionError(path)

    api = FakeApi(handler)
    kind = _variable("kind", 'label_values(tradeops_up{job="tradeops"}, kind)', sort=1)
    target = _variable(
        "target", 'label_values(tradeops_up{job="tradeops", kind=~"$kind"}, target)', regex="/^c|v/"
    )
    _, kinds = live.resolve(api, kind, {}, FIVE, end=1000)
    assert kinds == Value(("fix", "redis"))
    text, targets = live.resolve(api, target, {"kind": kinds}, FIVE, end=1000)
    assert targets.values == ("cache", "venue")
    assert 'kind=~"(fix|redis)"' in text
    # over the window
    assert api.calls[0][1]["start"] == ["700.000"] and api.calls[0][1]["end"] == ["1000.000"]


def test_a_single_value_variable_takes_its_current_value_or_the_first() -> None:
    api = FakeApi(lambda path, p: ["b", "a", "c"])
    single = _variable("s", "label_values(x, s)", multi=False, includeAll=False, sort=1)
    assert live.resolve(api, single, {}, FIVE, 0)[1] == Value(("a",), multi=False)
    current = {**single, "current": {"value": "c", "text": "c"}}
    assert live.resolve(api, current, {}, FIVE, 0)[1] == Value(("c",), multi=False)
    absent = {**single, "current": {"value": "gone", "text": "gone"}}
    assert live.resolve(api, absent, {}, FIVE, 0)[1] == Value(("a",), multi=False)


def test_regex_with_a_group_extracts_and_label_values_without_selector() -> None:
    api = FakeApi(lambda path, p: ["tradeops-a", "tradeops-b", "other"])
    v = _variable("x", "label_values(job)", regex="/tradeops-(.*)/")
    assert live.resolve(api, v, {}, FIVE, 0)[1].values == ("a", "b")
    assert api.calls[0][0] == "/api/v1/label/job/values"
    assert "match[]" not in api.calls[0][1]


def test_query_result_custom_and_constant_variables() -> None:
    api = FakeApi(lambda path, p: _vector({"__name__": "up", "job": "a"}))
    v = _variable("q", "query_result(up)", regex='/job="(\\w+)"/')
    assert live.resolve(api, v, {}, FIVE, 0)[1].values == ("a",)
    custom = {"type": "custom", "name": "c", "query": "a, b,c", "multi": True}
    assert live.resolve(api, custom, {}, FIVE, 0)[1].values == ("a", "b", "c")
    constant = {"type": "constant", "name": "k", "query": "v1"}
    assert live.resolve(api, constant, {}, FIVE, 0)[1] == Value(("v1",), multi=False)


def _dashboard() -> dict[str, Any]:
    def target(expr: str, ref: str, instant: bool) -> dict[str, Any]:
        return {"expr": expr, "refId": ref, "instant": instant, "range": not instant}

    return {
        "uid": "d1",
        "templating": {
            "list": [
                {"type": "datasource", "name": "datasource", "query": "prometheus"},
                _variable("target", 'label_values(up{job="x"}, target)'),
                _variable("none", "label_values(nothing, target)"),
            ]
        },
        "panels": [
            {"type": "row", "title": "Row", "panels": []},
            {
                "title": "Rates",
                "targets": [
                    target('rate(a_total{target=~"$target"}[$__rate_interval])', "A", False),
                    target('b{target=~"$target"}', "B", True),
                ],
            },
            {"title": "Errors only", "targets": [target("errors", "A", True)]},
            {"title": "Listed but live", "targets": [target('b{target=~"$target"}', "A", True)]},
            {"title": "Unlisted empty", "targets": [target('b{target=~"$none"}', "A", True)]},
            {"title": "Broken", "targets": [target("sum(", "A", True)]},
            {"title": "Recorded", "targets": [target("area:recorded", "A", True)]},
            {"title": "Recorded later", "targets": [target("area:recorded:slowly", "A", True)]},
            {"title": "Recorded 2m", "targets": [target("area:recorded:2m > 0", "A", True)]},
            {
                "title": "Both",
                "targets": [{"expr": "onlyrange", "refId": "A", "range": True, "instant": True}],
            },
        ],
    }


RULES = {
    "groups": [
        {
            "interval": 5,
            "rules": [
                {"type": "recording", "name": "area:recorded:slowly", "health": "unknown"},
                {"type": "recording", "name": "area:recorded", "health": "ok"},
            ],
        },
        {
            "interval": 120,  # longer than the uptime: evaluated once at most
            "rules": [{"type": "recording", "name": "area:recorded:2m", "health": "ok"}],
        },
    ]
}
STARTED = "1970-01-01T00:15:40Z"  # 60 s before the check at end=1000


def _prometheus(path: str, p: dict[str, list[str]]) -> Any:
    if path == "/api/v1/rules":
        return RULES
    if path == "/api/v1/status/runtimeinfo":
        return {"startTime": STARTED}
    if path == "/api/v1/label/target/values":
        return ["cache", "venue"] if p["match[]"] == ['up{job="x"}'] else []
    query = p["query"][0]
    if query == "sum(":
        raise live.QueryError("parse error: unclosed left parenthesis")
    if path == "/api/v1/query_range":
        assert p["step"] == ["5"]
        if query == 'rate(a_total{target=~"(cache|venue)"}[20s])' or query == "onlyrange":
            return _matrix({"target": "cache"})
        return _matrix()
    assert path == "/api/v1/query"
    if query == 'b{target=~"(cache|venue)"}':
        return _vector({"target": "cache"})
    if query == "scalar(1)":
        return {"resultType": "scalar", "result": [1, "1"]}
    return _vector()


EXPECTED = [
    Entry("d1", "error-only panel", panel="Errors only"),
    Entry("d1", "was empty once", panel="Listed but live", ref_id="A"),
    Entry("d1", "a panel removed since", panel="Gone"),
    Entry("d1", "no such variable", variable="nope"),
]


def test_the_check_sorts_every_query_into_data_listed_empty_failing_and_stale() -> None:
    report = live.check(FakeApi(_prometheus), [_dashboard()], FIVE, EXPECTED, end=1000)
    outcomes = {r.where: r.outcome for r in report.results}
    assert outcomes == {
        "d1 / variable target": "data",
        "d1 / variable none": "empty",
        "d1 / Rates [A]": "data",
        "d1 / Rates [B]": "data",
        "d1 / Errors only [A]": "empty",
        "d1 / Listed but live [A]": "data",
        "d1 / Unlisted empty [A]": "empty",
        "d1 / Broken [A]": "error",
        "d1 / Recorded [A]": "empty",  # evaluated, and empty
        "d1 / Recorded later [A]": "waiting",  # its rule has not run yet
        "d1 / Recorded 2m [A]": "waiting",  # its group ran once at most
        "d1 / Both [A]": "empty",  # data as a range, none at the instant
    }
    assert [r.where for r, _ in report.listed] == ["d1 / Errors only [A]"]
    assert [r.where for r in report.unexpected] == [
        "d1 / variable none",
        "d1 / Unlisted empty [A]",
        "d1 / Recorded [A]",
        "d1 / Both [A]",
    ]
    assert [r.where for r in report.waiting] == ["d1 / Recorded later [A]", "d1 / Recorded 2m [A]"]
    assert report.waiting[0].detail == "rules not due yet: area:recorded:slowly"
    assert [r.where for r in report.failing] == ["d1 / Broken [A]"]
    assert "unclosed left parenthesis" in report.failing[0].detail
    assert [(e.where, why.split(":")[0]) for e, why in report.stale] == [
        ("d1 / Listed but live [A]", "returned data"),
        ("d1 / Gone", "names no query of the dashboards"),
        ("d1 / variable nope", "names no query of the dashboards"),
    ]
    unlisted = next(r for r in report.unexpected if r.panel == "Unlisted empty")
    assert "variable none has no values" in unlisted.detail
    assert not report.ok
    assert report.summary() == (
        "dashboards live: 1 dashboards, 12 queries (2 variables), 4 returned data,"
        " 1 expected empty (listed), 2 waiting for rules not due yet,"
        " 4 unexpectedly empty, 1 failing, 3 stale entries"
    )
    lines = report.lines()
    assert lines[-1] == report.summary()
    assert "  expected empty: d1 / Errors only [A]: error-only panel" in lines
    assert (
        "  FAILING: d1 / Broken [A]: instant: parse error: unclosed left parenthesis: sum(" in lines
    )
    assert "  EMPTY: d1 / Both [A]: no series (instant): onlyrange" in lines


def test_a_clean_dashboard_is_ok() -> None:
    board = _dashboard()
    board["panels"] = board["panels"][:2]
    board["templating"]["list"] = board["templating"]["list"][:2]
    report = live.check(FakeApi(_prometheus), [board], FIVE, [], end=1000)
    assert report.ok, report.lines()
    assert report.summary() == (
        "dashboards live: 1 dashboards, 3 queries (1 variables), 3 returned data,"
        " 0 expected empty (listed), 0 waiting for rules not due yet,"
        " 0 unexpectedly empty, 0 failing, 0 stale entries"
    )


def test_a_refused_variable_query_fails_and_empties_its_dependents() -> None:
    def handler(path: str, p: dict[str, list[str]]) -> Any:
        if path == "/api/v1/rules":
            return {"groups": []}
        if path == "/api/v1/status/runtimeinfo":
            return {"startTime": STARTED}
        if path.startswith("/api/v1/label/"):
            raise live.QueryError("bad_data: 1:5: parse error")
        return _vector()

    board = _dashboard()
    board["panels"] = board["panels"][:2]
    report = live.check(FakeApi(handler), [board], FIVE, [], end=1000)
    assert [r.where for r in report.failing] == ["d1 / variable target", "d1 / variable none"]
    assert "variable target failed" in report.results[2].detail


# --- the committed list -------------------------------------------------------------------


def test_the_committed_list_loads_and_names_queries_of_the_dashboards() -> None:
    entries = live.load_expected()
    boards = {d["uid"]: d for d in dashboards.evaluate()["dashboards"].values()}
    for e in entries:
        assert e.reason, e
        assert e.dashboard in boards, f"{e.where}: no such dashboard"
        board = boards[e.dashboard]
        if e.variable is not None:
            assert e.variable in {v["name"] for v in lint.variables(board)}, e.where
        else:
            refs = {
                str(t.get("refId"))
                for p in lint.panels(board)
                if p.get("title") == e.panel
                for t in p.get("targets", [])
            }
            assert refs, f"{e.where}: no such panel"
            assert e.ref_id is None or e.ref_id in refs, f"{e.where}: no such refId"
    assert len({e.where for e in entries}) == len(entries), "an entry is repeated"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("- {panel: p, reason: r}", "no dashboard uid"),
        ("- {dashboard: d, panel: p}", "no reason"),
        ("- {dashboard: d, reason: r}", "either a panel or a variable"),
        ("- {dashboard: d, panel: p, variable: v, reason: r}", "either a panel or a variable"),
        ("- {dashboard: d, variable: v, refId: A, reason: r}", "refId without a panel"),
        ("- {dashboard: d, panel: p, reason: r, why: x}", "unknown fields"),
        ("- just text", "not a mapping"),
    ],
)
def test_a_bad_entry_is_refused(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "expected.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match=error):
        live.load_expected(path)


def test_an_entry_loads_with_its_fields(tmp_path: Path) -> None:
    path = tmp_path / "expected.yml"
    path.write_text("- {dashboard: d, panel: p, refId: B, reason: 'two\n  lines'}\n")
    assert live.load_expected(path) == [Entry("d", "two lines", panel="p", ref_id="B")]


# --- every dashboard query parses once substituted --------------------------------


def test_every_dashboard_query_parses_with_values_that_need_escaping() -> None:
    boards = dashboards.evaluate()["dashboards"].values()
    awkward = Value(("a.b", "c|d", "e(f)", "back\\slash"))
    for board in boards:
        names = {str(v["name"]): awkward for v in lint.variables(board)}
        for q in lint.queries(board):
            for timing in (FIVE, Timing.for_window(6 * 3600, 15)):
                expr = live.substitute(q.expr, names, timing)
                assert "$" not in expr.replace('"$1"', ""), f"{board['uid']} {q.where}: {expr}"
                promql_parser.parse(expr)
