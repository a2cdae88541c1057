"""The bundle's conventions, checked on the generated rule files: names,
labels, annotations, runbook pages, `for:` durations, group sizes, promtool's
linter, and that every name an expression reads exists."""

from __future__ import annotations

import re
import subprocess

import pytest

from bundle import build
from bundle.check import Rule, load_rules, rule_files, selector_problems, unknown_names

CONFIG = build.evaluate()["config"]
RULES = load_rules()
ALERTS = [r for r in RULES if r.is_alert]
RECORDED = {r.name for r in RULES if not r.is_alert}
RUNBOOKS = build.ROOT / "docs" / "runbooks"
SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(duration: str) -> int:
    """Seconds in a Prometheus duration such as 1h30m."""
    return sum(int(n) * UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", duration))


def ids(rule: Rule) -> str:
    return rule.name


def test_the_bundle_has_rules() -> None:
    assert len(ALERTS) > 0 and RECORDED


@pytest.mark.parametrize("rule", ALERTS, ids=ids)
def test_alert_names_and_labels(rule: Rule) -> None:
    assert re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*", rule.name), "CamelCase"
    assert len(rule.name) <= 40
    labels = rule.body["labels"]
    if rule.name != "Watchdog":
        assert labels["severity"] in ("critical", "warning", "info")
    assert labels["area"] in CONFIG["areas"]


@pytest.mark.parametrize("rule", ALERTS, ids=ids)
def test_alert_annotations(rule: Rule) -> None:
    ann = rule.body["annotations"]
    assert set(ann) >= {"summary", "description", "runbook_url", "dashboard_url"}
    summary = ann["summary"]
    assert "{{" not in summary, "summary is static (group by it)"
    assert summary[0].isupper() and summary.endswith("."), summary
    if rule.name != "Watchdog":
        assert "{{" in ann["description"] and (
            "$labels" in ann["description"] or "$value" in ann["description"]
        )
    assert ann["runbook_url"] == f"{CONFIG['runbookBaseUrl']}{rule.name}.md"
    uids = {d["uid"] for d in CONFIG["dashboards"].values()}
    m = re.fullmatch(
        re.escape(CONFIG["dashboardBaseUrl"]) + r"/d/([a-z0-9-]+)(\?.*)?", ann["dashboard_url"]
    )
    assert m and m.group(1) in uids, ann["dashboard_url"]


@pytest.mark.parametrize("rule", ALERTS, ids=ids)
def test_runbook_page_exists_with_its_sections(rule: Rule) -> None:
    page = RUNBOOKS / f"{rule.name}.md"
    assert page.is_file(), f"missing runbook {page}"
    text = page.read_text()
    assert text.startswith(f"# {rule.name}\n")
    positions = [text.find(s + "\n") for s in SECTIONS]
    assert all(p >= 0 for p in positions), f"{page}: needs sections {SECTIONS}"
    assert positions == sorted(positions), f"{page}: sections out of order"
    diagnosis = text[positions[2] : positions[3]]
    assert "```promql" in diagnosis, f"{page}: Diagnosis gives the PromQL to run"


@pytest.mark.parametrize("rule", [r for r in ALERTS if r.name != "Watchdog"], ids=ids)
def test_for_survives_a_missed_scrape(rule: Rule) -> None:
    assert seconds(rule.body["for"]) >= 2 * seconds(CONFIG["scrapeInterval"])


@pytest.mark.parametrize("rule", RULES, ids=ids)
def test_every_name_read_exists(rule: Rule) -> None:
    assert unknown_names(rule.body["expr"], RECORDED) == []


@pytest.mark.parametrize("rule", [r for r in RULES if r.name != "Watchdog"], ids=ids)
def test_every_selector_carries_its_job_selector(rule: Rule) -> None:
    assert selector_problems(rule.body["expr"], CONFIG) == []


def test_a_selector_without_the_job_selector_is_caught() -> None:
    assert selector_problems('tradeops_up{kind="redis"} == 0', CONFIG) == [
        "tradeops_up lacks " + str(frozenset({("job", "Equal", "tradeops")}))
    ]
    drift = 'tradeops_runtime_position_drift_ratio{job="tradeops"} > 0.005'
    assert len(selector_problems(drift, CONFIG)) == 1
    assert (
        selector_problems('up{job="trading-runtime"} == 0 or up{job="tradeops"} == 0', CONFIG) == []
    )


def test_unknown_names_are_caught() -> None:
    assert unknown_names("tradeops_redis_nope > 1", set()) == ["tradeops_redis_nope"]
    assert unknown_names('{__name__=~"tradeops_.*"}', set()) == ["<selector without a metric name>"]
    histogram = "tradeops_fix_session_order_ack_latency_seconds_bucket"
    assert unknown_names(f"rate({histogram}[5m])", set()) == []
    assert unknown_names("tradeops_up_bucket", set()) == ["tradeops_up_bucket"]


def test_groups_hold_at_most_20_rules_and_names_are_unique() -> None:
    seen: dict[str, int] = {}
    for rule in RULES:
        seen[rule.group] = seen.get(rule.group, 0) + 1
    assert max(seen.values()) <= 20, seen
    names = [r.name for r in ALERTS]
    assert len(names) == len(set(names))


def test_promtool_lint_is_clean() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", "--lint=all", "--lint-fatal", *map(str, rule_files())],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
