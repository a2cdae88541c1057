"""bundle.routes walks a route tree as Alertmanager does: for the shipped config
and a tree of its own, the receivers it finds are amtool's, in amtool's order,
and the timings it reads are the ones each route inherits or sets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from bundle.routes import Matcher, prom_duration, receiver_integrations, routes_for
from stack.alerting import SHIPPED_CONFIG, TEMPLATES_DIR, TEMPLATES_PREFIX
from stack.services import find_binary

LABEL_SETS = [
    {"alertname": "RedisDown", "severity": "critical", "area": "redis", "target": "cache"},
    {"alertname": "RedisMemoryNearMax", "severity": "warning", "area": "redis"},
    {"alertname": "X", "severity": "info", "area": "exporter"},
    {"alertname": "Watchdog", "severity": "none", "area": "exporter"},
    {"alertname": "X", "severity": "critical", "team": "execution", "area": "sla"},
    {"alertname": "X", "severity": "warning", "team": "execution", "area": "sla"},
    {"alertname": "X", "severity": "info", "team": "execution", "area": "sla"},
    {"alertname": "X", "severity": "critical", "team": "risk", "area": "sla"},
    {"alertname": "X", "severity": "warning", "team": "risk", "area": "sla"},
    {"alertname": "X", "severity": "critcal"},
    {"alertname": "PagingDrill", "severity": "critical", "area": "exporter", "drill": "true"},
    {"alertname": "X"},
]


def amtool_receivers(config: Path, labels: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [
            find_binary("amtool", "/usr/bin/amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={config}",
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip().split(",")


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = SHIPPED_CONFIG.read_text().replace(TEMPLATES_PREFIX, f"{TEMPLATES_DIR}/")
    path = tmp_path_factory.mktemp("routes") / "alertmanager.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("labels", LABEL_SETS, ids=lambda lbl: ",".join(lbl.values()))
def test_receivers_agree_with_amtool_on_the_shipped_config(
    shipped: Path, labels: dict[str, str]
) -> None:
    config = yaml.safe_load(shipped.read_text())
    assert [r.receiver for r in routes_for(config, labels)] == amtool_receivers(shipped, labels)


TREE = """
route:
  receiver: root
  group_by: [alertname]
  group_wait: 45s
  routes:
    - matchers: ['a=~"x|y"', b!="no"]
      receiver: first
      group_interval: 1m
      continue: true
      routes:
        - match: {c: deep}
          receiver: deep
          repeat_interval: 1h30m
    - matchers: ['{a="x", d!~"z.*"}']
      receiver: second
      group_by: [a]
      group_wait: 0s
    - match_re: {a: 'y'}
      receiver: third
receivers: [{name: root}, {name: first}, {name: deep}, {name: second}, {name: third}]
"""


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"a": "x"}, ["first", "second"]),
        ({"a": "x", "c": "deep"}, ["deep", "second"]),
        ({"a": "x", "d": "zz"}, ["first"]),
        ({"a": "y"}, ["first", "third"]),
        ({"a": "y", "b": "no"}, ["third"]),
        ({"a": "xx"}, ["root"]),
        ({}, ["root"]),
    ],
)
def test_a_tree_of_our_own_agrees_with_amtool(
    tmp_path: Path, labels: dict[str, str], expected: list[str]
) -> None:
    path = tmp_path / "am.yml"
    path.write_text(TREE)
    config = yaml.safe_load(TREE)
    assert [r.receiver for r in routes_for(config, labels)] == expected
    assert amtool_receivers(path, labels or {"unrelated": "1"}) == expected


def test_timings_are_inherited_or_set_per_route() -> None:
    config = yaml.safe_load(TREE)
    deep, second = routes_for(config, {"a": "x", "c": "deep"})
    assert (deep.group_wait, deep.group_interval, deep.repeat_interval) == (45, 60, 5400)
    assert deep.group_by == ("alertname",)
    assert (second.group_wait, second.group_interval, second.repeat_interval) == (0, 300, 14400)
    assert second.group_by == ("a",)


def test_matchers_and_durations() -> None:
    assert Matcher.parse('team="execution"').matches({"team": "execution"})
    assert Matcher.parse('severity!="info"').matches({})
    assert Matcher.parse('x=~"a|b"').matches({"x": "b"})
    assert not Matcher.parse('x=~"a|b"').matches({"x": "ab"})  # anchored
    assert Matcher.parse('x!~"a.*"').matches({"x": "b"})
    assert Matcher.parse('msg="say \\"hi\\""').value == 'say "hi"'
    assert [prom_duration(d) for d in ("0s", "250ms", "1h30m", "2d")] == [0, 0.25, 5400, 172800]
    with pytest.raises(ValueError, match="not a duration"):
        prom_duration("5 minutes")


def test_integrations_and_send_resolved_defaults() -> None:
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    found = receiver_integrations(config)
    assert found["null"] == []
    assert [(i.kind, i.send_resolved) for i in found["pagerduty-oncall"]] == [("pagerduty", True)]
    assert [(i.kind, i.send_resolved) for i in found["deadmans-switch"]] == [("webhook", False)]
    bare = receiver_integrations({"receivers": [{"name": "s", "slack_configs": [{}]}]})
    assert [(i.kind, i.send_resolved) for i in bare["s"]] == [("slack", False)]
