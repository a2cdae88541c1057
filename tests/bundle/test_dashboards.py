"""The dashboards, checked without a Grafana server: they compile, the committed
JSON equals a fresh build, uids are stable, every alert's and panel's dashboard
link resolves, every metric exists, and the dashboard-linter rules hold (each
shown catching a planted bad panel)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bundle import dashboards, lint
from bundle.check import load_rules

from .test_build import JSONNET_SOURCES

EVALUATED = dashboards.evaluate()
CONFIG: dict[str, Any] = EVALUATED["config"]
DASHBOARDS: dict[str, dict[str, Any]] = EVALUATED["dashboards"]
RULES = load_rules()
RECORDED = frozenset(r.name for r in RULES if not r.is_alert)
BUILT_UIDS = {p.stem for p in dashboards.BUILD_DIR.glob("*.json")}

# The uid of each dashboard source, as released: a changed uid breaks every
# bookmark and every alert's dashboard_url, so changing one must fail here.
EXPECTED_UIDS = {
    "backups.jsonnet": {"backups": "tradeops-backups"},
    "eventbus.jsonnet": {"eventbus": "tradeops-eventbus"},
    "exporter.jsonnet": {"exporter": "tradeops-exporter"},
    "fix.jsonnet": {"fix": "tradeops-fix"},
    "kafka.jsonnet": {"kafka": "tradeops-kafka"},
    "overview.jsonnet": {"overview": "tradeops-overview"},
    "redis.jsonnet": {"redis": "tradeops-redis"},
    "slo.jsonnet": {"slo": "tradeops-slo"},
    "timescale.jsonnet": {"timescale": "tradeops-timescale"},
}
# Every uid of bundle/config.libsonnet, built or not.
CONFIG_UIDS = {
    "overview": "tradeops-overview",
    "exporter": "tradeops-exporter",
    "fix": "tradeops-fix",
    "kafka": "tradeops-kafka",
    "redis": "tradeops-redis",
    "timescale": "tradeops-timescale",
    "backups": "tradeops-backups",
    "eventbus": "tradeops-eventbus",
    "slo": "tradeops-slo",
}
_UID_IN_URL = re.compile(r"/d/([A-Za-z0-9_-]+)")


def test_every_source_compiles_into_the_bundle() -> None:
    assert dashboards.sources(), "no dashboards/*.jsonnet"
    keys = [k for s in dashboards.sources() for k in dashboards.keys_of(s)]
    assert sorted(keys) == sorted(DASHBOARDS), "every source is imported by dashboards/mixin"
    for key, dashboard in DASHBOARDS.items():
        assert dashboard["uid"] == CONFIG["dashboards"][key]["uid"]
        assert dashboard["title"] == CONFIG["dashboards"][key]["title"]
        assert dashboard["description"] and dashboard["tags"][0] == "tradeops"
        assert dashboard["time"]["from"] and dashboard["refresh"]
        assert dashboard["panels"]


def test_committed_json_matches_a_fresh_build() -> None:
    assert dashboards.stale() == [], "run `make dashboards` and commit the result"


def test_a_stale_dashboard_is_reported(tmp_path: Path) -> None:
    dashboards.write(tmp_path)
    victim = sorted(tmp_path.glob("*.json"))[0]
    victim.write_text(victim.read_text().replace('"refresh"', '"refresh_"', 1))
    (tmp_path / "extra.json").write_text("{}\n")
    assert dashboards.stale(tmp_path) == [victim.name, "extra.json"]
    assert dashboards.main(["--check", "--out", str(tmp_path)]) == 1


def test_build_output_is_sorted_indented_and_ends_in_a_newline() -> None:
    for path in sorted(dashboards.BUILD_DIR.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n") and text.startswith('{\n  "annotations"'), path


def test_dashboard_sources_are_format_checked() -> None:
    ours = {p for p in JSONNET_SOURCES if "dashboards" in p.parts}
    assert set(dashboards.sources()) <= ours
    assert dashboards.DASHBOARDS_DIR / "lib" / "grafana.libsonnet" in ours
    assert dashboards.DASHBOARDS_DIR / "mixin.libsonnet" in ours


def test_uids_are_stable() -> None:
    assert {s.name for s in dashboards.sources()} == set(EXPECTED_UIDS)
    for source in dashboards.sources():
        keys = dashboards.keys_of(source)
        assert {k: DASHBOARDS[k]["uid"] for k in keys} == EXPECTED_UIDS[source.name], source
    assert {k: v["uid"] for k, v in CONFIG["dashboards"].items()} == CONFIG_UIDS
    assert {d["uid"] for d in DASHBOARDS.values()} == BUILT_UIDS


def test_every_alert_dashboard_url_resolves() -> None:
    alerts = [r for r in RULES if r.is_alert]
    assert alerts
    for rule in alerts:
        m = _UID_IN_URL.search(rule.body["annotations"]["dashboard_url"])
        assert m, rule.name
        assert m.group(1) in BUILT_UIDS, f"{rule.name}: {m.group(1)}"
    linked = {_UID_IN_URL.search(r.body["annotations"]["dashboard_url"]) for r in alerts}
    assert {m.group(1) for m in linked if m} == BUILT_UIDS, "every dashboard explains alerts"


_VAR_IN_URL = re.compile(r"[?&]var-(\w+)=")


def test_every_alert_dashboard_url_sets_variables_of_its_dashboard() -> None:
    by_uid = {d["uid"]: d for d in DASHBOARDS.values()}
    for rule in (r for r in RULES if r.is_alert):
        url = rule.body["annotations"]["dashboard_url"]
        m = _UID_IN_URL.search(url)
        if m is None or m.group(1) not in by_uid:
            continue
        names = {v["name"] for v in lint.variables(by_uid[m.group(1)])}
        for var in _VAR_IN_URL.findall(url):
            assert var in names, f"{rule.name}: {url} sets var-{var}, not a variable there"


def _links(dashboard: dict[str, Any]) -> list[str]:
    urls = [str(link.get("url", "")) for link in dashboard.get("links", [])]
    for p in lint.panels(dashboard):
        urls += [str(link["url"]) for link in p.get("links", [])]
        urls += [
            str(link["url"])
            for link in p.get("fieldConfig", {}).get("defaults", {}).get("links", [])
        ]
    return urls


@pytest.mark.parametrize("key", sorted(DASHBOARDS))
def test_every_dashboard_link_resolves(key: str) -> None:
    for url in _links(DASHBOARDS[key]):
        m = _UID_IN_URL.search(url)
        if m:
            assert m.group(1) in BUILT_UIDS, url


def test_the_overview_has_a_stat_per_area_and_links_to_the_area_dashboards() -> None:
    overview = DASHBOARDS["overview"]
    exprs = {t["expr"] for p in lint.panels(overview) for t in p.get("targets", [])}
    for area in CONFIG["areas"]:
        assert f'tradeops:area_status{{area="{area}"}}' in exprs, area
    targets = [p for p in lint.panels(overview) if p["title"].startswith("Targets: ")]
    assert targets
    for p in targets:
        area = p["title"].removeprefix("Targets: ")
        assert p["links"][0]["url"] == "/d/" + CONFIG["dashboards"][area]["uid"]
    assert any('ALERTS{alertstate="firing"}' in e for e in exprs)
    assert any(
        "tradeops_runtime_position_drift_ratio{" + CONFIG["sla"]["runtimeSelector"] in e
        for e in exprs
    )


@pytest.mark.parametrize("key", sorted(DASHBOARDS))
def test_variables_have_names_types_and_queries(key: str) -> None:
    for v in lint.variables(DASHBOARDS[key]):
        assert v["name"] and v["type"] in ("datasource", "query"), v
        if v["type"] == "query":
            assert lint.variable_query(v).startswith("label_values("), v


@pytest.mark.parametrize("check", sorted(lint.CHECKS))
@pytest.mark.parametrize("key", sorted(DASHBOARDS))
def test_dashboard_linter_rule(key: str, check: str) -> None:
    assert lint.CHECKS[check](DASHBOARDS[key], CONFIG) == []


@pytest.mark.parametrize("key", sorted(DASHBOARDS))
def test_every_metric_exists(key: str) -> None:
    assert lint.queries(DASHBOARDS[key])
    assert lint.metrics_exist(DASHBOARDS[key], CONFIG, RECORDED) == []


# --- each check catches a planted bad panel --------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _panel(d: dict[str, Any], type_: str = "timeseries") -> dict[str, Any]:
    panel: dict[str, Any] = next(p for p in d["panels"] if p["type"] == type_)
    return panel


def _set_expr(expr: str) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        _panel(d)["targets"][0]["expr"] = expr

    return mutate


def _drop_datasource_variable(d: dict[str, Any]) -> None:
    d["templating"]["list"] = [v for v in d["templating"]["list"] if v["name"] != "datasource"]


def _hard_coded_datasource(d: dict[str, Any]) -> None:
    _panel(d)["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}


def _no_description(d: dict[str, Any]) -> None:
    _panel(d)["description"] = ""


def _no_unit(d: dict[str, Any]) -> None:
    del _panel(d, "stat")["fieldConfig"]["defaults"]["unit"]


def _no_thresholds(d: dict[str, Any]) -> None:
    _panel(d, "stat")["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": []}


def _no_targets(d: dict[str, Any]) -> None:
    _panel(d)["targets"] = []


SEL = 'job="tradeops"'
PLANTED: dict[str, list[Mutation]] = {
    "template-datasource": [_drop_datasource_variable],
    "panel-datasource": [_hard_coded_datasource],
    "panel-title-description": [_no_description],
    "panel-units": [_no_unit],
    "panel-thresholds": [_no_thresholds],
    "panel-no-targets": [_no_targets],
    "target-promql": [_set_expr(f"sum by (target (tradeops_up{{{SEL}}})")],
    "target-rate-interval": [
        _set_expr(f"rate(tradeops_probe_runs_total{{{SEL}}}[5m])"),
        _set_expr(f"increase(tradeops_probe_errors_total{{{SEL}}}[$__interval])"),
    ],
    "target-counter-agg": [
        _set_expr(f"sum(tradeops_probe_runs_total{{{SEL}}})"),
        _set_expr(f"tradeops_fix_session_order_ack_latency_seconds_count{{{SEL}}}"),
        _set_expr(f"delta(tradeops_probe_errors_total{{{SEL}}}[$__rate_interval])"),
    ],
    "target-job-instance": [
        _set_expr("tradeops_up"),
        _set_expr('tradeops_up{instance="exporter-0:9713"}'),
        _set_expr(f'tradeops_up{{{SEL}, instance="exporter-0:9713"}}'),
        _set_expr('tradeops_up{job="other", instance=~"$instance"}'),
    ],
}


def test_every_check_has_a_planted_bad_panel() -> None:
    assert set(PLANTED) == set(lint.CHECKS)


@pytest.mark.parametrize(
    ("check", "mutation"),
    [(c, m) for c, ms in sorted(PLANTED.items()) for m in ms],
    ids=lambda x: x if isinstance(x, str) else getattr(x, "__name__", "?"),
)
def test_a_check_catches_its_planted_bad_panel(check: str, mutation: Mutation) -> None:
    good = DASHBOARDS["exporter"]
    assert lint.CHECKS[check](good, CONFIG) == []
    bad = copy.deepcopy(good)
    mutation(bad)
    assert lint.CHECKS[check](bad, CONFIG), f"{check} missed the planted panel"


def test_an_instance_variable_and_the_rate_interval_pass() -> None:
    good = copy.deepcopy(DASHBOARDS["exporter"])
    _set_expr(
        f'sum(rate(tradeops_probe_runs_total{{{SEL}, instance=~"$instance"}}[$__rate_interval]))'
    )(good)
    for check in (
        "target-promql",
        "target-rate-interval",
        "target-counter-agg",
        "target-job-instance",
    ):
        assert lint.CHECKS[check](good, CONFIG) == [], check


def test_an_unknown_metric_is_caught() -> None:
    bad = copy.deepcopy(DASHBOARDS["exporter"])
    _set_expr(f"tradeops_no_such_series{{{SEL}}}")(bad)
    assert lint.metrics_exist(bad, CONFIG, RECORDED) == [
        "Probe duration / deadline [A]: unknown metric tradeops_no_such_series"
    ]
    _set_expr("tradeops:no_such_record")(bad)
    assert lint.metrics_exist(bad, CONFIG, RECORDED)
    _set_expr("$target")(bad)
    assert lint.metrics_exist(bad, CONFIG, RECORDED), "a variable where a metric belongs"


OVERRIDE = """
{
  _config+:: {
    selector: 'job="desk-monitoring", env="prod"',
    dashboards+: { overview+: { title: 'Desk overview' } },
    sla+: { orderLatencyP95Seconds: 0.2 },
  },
}
"""


def test_an_override_reaches_every_dashboard(tmp_path: Path) -> None:
    paths = dashboards.write(tmp_path, OVERRIDE)
    assert sorted(p.name for p in paths) == sorted(f"{u}.json" for u in BUILT_UIDS)
    evaluated = dashboards.evaluate(OVERRIDE)
    config = evaluated["config"]
    for key, dashboard in evaluated["dashboards"].items():
        assert lint.target_job_instance(dashboard, config) == [], key
        assert 'job="tradeops"' not in dashboards.render(dashboard), key
    overview = evaluated["dashboards"]["overview"]
    assert overview["title"] == "Desk overview"
    p95 = next(p for p in lint.panels(overview) if p["title"] == "Order ack p95")
    assert p95["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.2


def test_the_figures_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert dashboards.main(["--check"]) == 0
    out = capsys.readouterr().out
    panels = sum(1 for d in DASHBOARDS.values() for p in lint.panels(d) if p["type"] != "row")
    queries = sum(len(lint.queries(d)) for d in DASHBOARDS.values())
    assert f"dashboards: {len(DASHBOARDS)} " in out and f" {panels} panels" in out
    assert f" {queries} queries" in out
