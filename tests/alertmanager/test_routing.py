"""Where alerts go, asked of amtool on the shipped config.

- ``routes.yml``: a hand-written table of label sets and their receivers;
- every alert of the rules bundle, with its own labels, reaches exactly the
  receivers ``am.expected_receivers`` (the policy: severity, team) calls for,
  so a new alert cannot end up unrouted or paging by accident;
- a severity nobody routes lands on the on-call channel, never on silence.

``amtool config routes test`` ignores inhibitions and time intervals; the
inhibitions are checked in test_inhibit.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bundle import check

from . import am

TABLE: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "routes.yml").read_text(encoding="utf-8")
)
ALERTS = am.bundle_alerts()
CONFIG = am.shipped_config()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return am.local_config(tmp_path_factory.mktemp("am"))


def verify(config: Path, labels: dict[str, str], expect: list[str]) -> None:
    result = am.routes_test(config, labels, expect)
    got = result.stdout.strip().splitlines()[0] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{labels}: expected {expect}, amtool routes to {got!r}"
    assert got.split(",") == expect


@pytest.mark.parametrize("case", TABLE, ids=[c["name"] for c in TABLE])
def test_routing_table(config: Path, case: dict[str, Any]) -> None:
    verify(config, {k: str(v) for k, v in case["labels"].items()}, case["receivers"])


@pytest.mark.parametrize("case", TABLE, ids=[c["name"] for c in TABLE])
def test_the_policy_agrees_with_the_table(case: dict[str, Any]) -> None:
    """The policy the generated check applies says what the table says."""
    assert am.expected_receivers(case["labels"]) == case["receivers"]


@pytest.mark.parametrize("alert", ALERTS, ids=[a.name for a in ALERTS])
def test_every_bundle_alert_reaches_what_its_labels_call_for(
    config: Path, alert: am.BundleAlert
) -> None:
    expect = am.expected_receivers(alert.labels)
    assert expect
    verify(config, alert.labels, expect)


def test_the_generated_check_covers_the_whole_bundle() -> None:
    names = [a.name for a in ALERTS]
    assert len(names) == len(set(names))
    assert len(ALERTS) == sum(r.is_alert for r in check.load_rules())
    assert len(ALERTS) >= 100
    # almost every alert carries the labels one of its promtool cases shows
    assert sum(a.from_test for a in ALERTS) >= 0.9 * len(ALERTS)


def test_bundle_labels_are_ones_the_routes_know() -> None:
    """A severity or team the routes do not know would fall to a default."""
    for alert in ALERTS:
        if alert.name == "Watchdog":
            assert alert.static["severity"] == "none"
            continue
        assert alert.static.get("severity") in {"critical", "warning", "info"}, alert.name
        assert alert.static.get("team", "execution") in am.TEAMS, alert.name


def test_pages_come_from_critical_alerts_only() -> None:
    for alert in ALERTS:
        pages = [r for r in am.expected_receivers(alert.labels) if r.startswith("pagerduty")]
        assert bool(pages) == (alert.static.get("severity") == "critical"), alert.name


@pytest.mark.parametrize("severity", ["", "crit", "Critical", "high", "page", "none", "error"])
def test_an_unknown_severity_lands_on_the_on_call_channel(config: Path, severity: str) -> None:
    labels = {"alertname": "SomethingNew", "area": "kafka", "target": "trading-eu"}
    if severity:
        labels["severity"] = severity
    verify(config, labels, ["slack-oncall"])
    receiver = next(r for r in CONFIG["receivers"] if r["name"] == "slack-oncall")
    assert receiver["slack_configs"], "the default receiver must notify somebody"
