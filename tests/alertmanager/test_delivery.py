"""Real delivery: the real Alertmanager 0.25 with the shipped
alertmanager/alertmanager.yml delivers to local stand-ins of Slack's incoming
webhook, PagerDuty's Events API v2 and the dead-man's switch (stack/sinks.py,
which refuse what the real services refuse).

The config is a copy with only what a user sets changed (stack/alerting.py):
the files under /etc/alertmanager/secrets/ hold the stand-ins' URLs and keys,
the templates are the repository's, PagerDuty's ``url`` and the dead-man
webhook's ``url`` point at the stand-ins. Timings are read from the file
(bundle.routes), never restated. One Alertmanager serves the module; every
scenario has labels of its own (its ``target``), and the scenarios are posted
together at the start so that their group waits run at the same time.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bundle.check import load_rules
from bundle.drill import drill_alert, drill_labels, rfc3339
from bundle.routes import DEFAULT_GROUP_WAIT, Route, prom_duration, routes_for
from stack.alerting import wire_config
from stack.prometheus import Alertmanager
from stack.sinks import Notification, Sinks

SLACK_S = 3.0
"""What delivery may add to a group wait or interval: the request, the
flush's own jitter, a loaded machine."""
RUN = secrets.token_hex(3)
JOB, INSTANCE = "tradeops", "exporter-0:9713"
RULES = {r.name: r.body for r in load_rules() if r.is_alert}
MEASURED: dict[str, float] = {}


def target(name: str) -> str:
    """A target name of this run (labels differ between scenarios and runs)."""
    return f"dlv-{name}-{RUN}"


def bundle_alert(name: str, **labels: str) -> dict[str, Any]:
    """The alert ``name`` of the rules bundle as Prometheus sends it: its static
    labels and annotations, ``{{ $labels.x }}`` filled in, the series' labels."""
    rule = RULES[name]
    all_labels = {"alertname": name, "job": JOB, "instance": INSTANCE}
    all_labels |= {k: str(v) for k, v in rule["labels"].items()} | labels

    def fill(text: str) -> str:
        text = re.sub(  # {{ with $labels.x }}{{ . }}{{ else }}y{{ end }}
            r"\{\{ with \$labels\.(\w+) \}\}\{\{ \. \}\}\{\{ else \}\}(.*?)\{\{ end \}\}",
            lambda m: all_labels.get(m[1]) or m[2],
            text,
        )
        text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: all_labels.get(m[1], ""), text)
        return re.sub(r"\{\{.*?\}\}", "", text)  # values and queries: not here

    annotations = {k: fill(str(v)) for k, v in rule["annotations"].items()}
    return {"labels": all_labels, "annotations": annotations}


def synthetic_alert(name: str, **labels: str) -> dict[str, Any]:
    """An alert the bundle does not have yet (say so where used)."""
    return {
        "labels": {"alertname": name, "job": JOB, "instance": INSTANCE, **labels},
        "annotations": {
            "summary": f"{name} (a delivery-test alert).",
            "description": f"{name} for {labels.get('target', '?')}.",
            "runbook_url": f"https://runbooks.tradeops.example/{name}.md",
        },
    }


@dataclass
class Delivery:
    """The module's Alertmanager, stand-ins and what was posted when."""

    am: Alertmanager
    sinks: Sinks
    config: dict[str, Any]
    posted: dict[str, float] = field(default_factory=dict)
    """Scenario -> time.monotonic() just before its alerts were posted."""

    def post(self, scenario: str, alerts: list[dict[str, Any]]) -> None:
        self.posted[scenario] = time.monotonic()
        request = urllib.request.Request(
            f"{self.am.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200

    def routes(self, alert: Mapping[str, Any]) -> list[Route]:
        return routes_for(self.config, alert["labels"])

    def group_wait(self, alert: Mapping[str, Any]) -> float:
        return max(r.group_wait for r in self.routes(alert))


async def api_alerts(am: Alertmanager, *filters: str) -> list[dict[str, Any]]:
    """``GET /api/v2/alerts`` with label filters (active, silenced and inhibited)."""
    params = [("filter", f) for f in filters]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{am.url}/api/v2/alerts", params=params) as resp,
    ):
        assert resp.status == 200
        found: list[dict[str, Any]] = await resp.json()
        return found


def about(tgt: str, sink: str | None = None, status: str = "firing") -> Any:
    """A predicate: a delivery that mentions ``tgt`` (to ``sink``, with ``status``)."""

    def match(n: Notification) -> bool:
        return n.mentions(tgt) and n.status == status and (sink is None or n.sink == sink)

    return match


def measure(d: Delivery, scenario: str, n: Notification, key: str | None = None) -> float:
    elapsed = n.received - d.posted[scenario]
    MEASURED[key or f"{scenario} -> {n.sink} {n.receiver}"] = round(elapsed, 2)
    return elapsed


# Scenarios posted at the start (name -> alerts).
CRITICAL = bundle_alert("RedisDown", kind="redis", target=target("critical"))
WARNING = bundle_alert("RedisMemoryNearMax", target=target("warning"))
# The bundle has no info alert: a synthetic one with the labels an info alert carries.
INFO = synthetic_alert(
    "ExporterInfoNotice", severity="info", area="exporter", target=target("info")
)
RESOLVE = bundle_alert("KafkaClusterDown", kind="kafka", target=target("resolve"))
DOWN = bundle_alert("TimescaleDown", kind="timescale", target=target("inhibit"))
STALE = bundle_alert(
    "TimescaleTableStale", target=target("inhibit"), table="ticks", calendar="xnys"
)
WATCHDOG = bundle_alert("Watchdog")
DRILL_ID = f"delivery-{RUN}"
DRILL = {"labels": drill_labels(DRILL_ID)}
"""The paging drill's labels; the alert itself is made when posted (its startsAt
must be now: an alert older than the group wait is flushed at once)."""


def _execution(severity: str) -> dict[str, Any]:
    """The SLA packet's order-latency escalation (team=execution). While the bundle
    has no such rule, a synthetic alert with the labels it will carry."""
    tgt = target(f"execution-{severity}")
    for name, rule in RULES.items():
        if rule["labels"].get("team") == "execution" and rule["labels"]["severity"] == severity:
            return bundle_alert(name, target=tgt)
    return synthetic_alert(
        "SlaOrderLatencyHigh", severity=severity, area="sla", team="execution", target=tgt
    )


EXECUTION = _execution("critical")
EXECUTION_WARNING = _execution("warning")
SCENARIOS = {
    "critical": [CRITICAL],
    "warning": [WARNING],
    "info": [INFO],
    "resolve": [RESOLVE],
    "inhibit": [DOWN, STALE],  # together: the source is there when the target flushes
    "execution": [EXECUTION],
    "execution-warning": [EXECUTION_WARNING],
    "watchdog": [WATCHDOG],
}


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delivery]:
    root = tmp_path_factory.mktemp("delivery")
    sinks = Sinks().start_in_thread()
    wired = wire_config(sinks, root / "secrets")
    am = Alertmanager(root, config_text=wired.text).start()
    d = Delivery(am, sinks, wired.config)
    try:
        for scenario, alerts in SCENARIOS.items():
            d.post(scenario, alerts)
        now = time.time()
        d.post("drill", [drill_alert(DRILL["labels"], now, now + 600, 600)])
        yield d
    finally:
        am.stop()
        sinks.stop_thread()
        if MEASURED:
            print("\nmeasured delivery times (s after posting):")
            for key, seconds in MEASURED.items():
                print(f"  {key}: {seconds}")


async def settle(d: Delivery, scenario: str, seconds: float) -> None:
    """Sleep until ``seconds`` after the scenario was posted."""
    remaining = d.posted[scenario] + seconds - time.monotonic()
    if remaining > 0:
        await asyncio.sleep(remaining)


def slowest_first_flush(config: Mapping[str, Any]) -> float:
    """The longest group wait anywhere in the route tree."""
    waits: list[float] = []

    def walk(node: Mapping[str, Any], inherited: float) -> None:
        here = prom_duration(node.get("group_wait", inherited))
        waits.append(here)
        for child in node.get("routes") or []:
            walk(child, here)

    walk(config["route"], DEFAULT_GROUP_WAIT)
    return max(waits)


def _no_rejections(d: Delivery) -> None:
    assert d.sinks.rejections == [], [(r.path, r.reason) for r in d.sinks.rejections]


async def test_a_critical_pages_and_reaches_the_channel_within_group_wait(
    delivery: Delivery,
) -> None:
    d, tgt = delivery, CRITICAL["labels"]["target"]
    assert [r.receiver for r in d.routes(CRITICAL)] == ["pagerduty-oncall", "slack-oncall"]
    wait = d.group_wait(CRITICAL)
    assert wait <= 30, "a critical page leaves within 30 s (issue 10)"
    (page,) = await d.sinks.wait_for(about(tgt, "pagerduty"), wait + SLACK_S + 2)
    (chat,) = await d.sinks.wait_for(about(tgt, "slack"), wait + SLACK_S + 2)
    for n in (page, chat):
        assert wait - 0.5 <= measure(d, "critical", n) <= wait + SLACK_S
    assert page.receiver == "pagerduty-oncall" and chat.receiver == "#tradeops-oncall"
    payload = page.body["payload"]
    assert payload["severity"] == "critical" and payload["class"] == "RedisDown"
    assert payload["source"] == tgt
    assert payload["summary"].startswith(f"[FIRING:1] RedisDown kind=redis target={tgt}")
    links = {link["text"]: link["href"] for link in page.body["links"]}
    assert links["Runbook"] == "https://runbooks.tradeops.example/RedisDown.md"
    assert links["Dashboard"].endswith(f"var-target={tgt}")
    attachment = chat.body["attachments"][0]
    assert attachment["title"] == f"[FIRING:1] CRITICAL RedisDown kind=redis target={tgt}"
    assert attachment["color"] == "danger"
    assert "<https://runbooks.tradeops.example/RedisDown.md|Runbook>" in attachment["text"]
    (seen,) = await api_alerts(d.am, f'target="{tgt}"')
    assert sorted(r["name"] for r in seen["receivers"]) == ["pagerduty-oncall", "slack-oncall"]
    _no_rejections(d)


async def test_a_resolve_sends_the_resolve_event_with_the_same_dedup_key(
    delivery: Delivery,
) -> None:
    d, tgt = delivery, RESOLVE["labels"]["target"]
    wait = d.group_wait(RESOLVE)
    (trigger,) = await d.sinks.wait_for(about(tgt, "pagerduty"), wait + SLACK_S + 2)
    await d.sinks.wait_for(about(tgt, "slack"), SLACK_S)
    assert trigger.event_action == "trigger"
    d.post("resolved", [{**RESOLVE, "endsAt": rfc3339(time.time())}])
    interval = max(r.group_interval for r in d.routes(RESOLVE))
    timeout = interval + SLACK_S + 2
    (resolve,) = await d.sinks.wait_for(about(tgt, "pagerduty", "resolved"), timeout)
    (chat,) = await d.sinks.wait_for(about(tgt, "slack", "resolved"), SLACK_S)
    assert measure(d, "resolved", resolve) <= interval + SLACK_S
    measure(d, "resolved", chat)
    assert resolve.event_action == "resolve" and resolve.dedup_key == trigger.dedup_key
    assert d.sinks.incident(str(trigger.dedup_key)) == "resolve"
    assert chat.body["attachments"][0]["color"] == "good"
    assert chat.body["attachments"][0]["title"].startswith("[RESOLVED:1] CRITICAL")
    assert await api_alerts(d.am, f'target="{tgt}"') == []
    _no_rejections(d)


async def test_a_warning_reaches_only_slack(delivery: Delivery) -> None:
    d, tgt = delivery, WARNING["labels"]["target"]
    assert [r.receiver for r in d.routes(WARNING)] == ["slack-oncall"]
    wait = d.group_wait(WARNING)
    (chat,) = await d.sinks.wait_for(about(tgt), wait + SLACK_S + 2)
    assert wait - 0.5 <= measure(d, "warning", chat) <= wait + SLACK_S
    assert (chat.sink, chat.receiver) == ("slack", "#tradeops-oncall")
    assert chat.body["attachments"][0]["color"] == "warning"
    # a page would have left at the critical routes' shorter group wait already
    assert d.sinks.matching(about(tgt, "pagerduty")) == []
    _no_rejections(d)


async def test_team_execution_reaches_the_execution_desk_and_on_call(delivery: Delivery) -> None:
    d, tgt = delivery, EXECUTION["labels"]["target"]
    receivers = [r.receiver for r in d.routes(EXECUTION)]
    assert receivers == ["slack-execution", "pagerduty-oncall", "slack-oncall"]
    wait = d.group_wait(EXECUTION)
    found = await d.sinks.wait_for(about(tgt), wait + SLACK_S + 2, count=3)
    assert sorted((n.sink, n.receiver) for n in found) == [
        ("pagerduty", "pagerduty-oncall"),
        ("slack", "#execution-desk"),
        ("slack", "#tradeops-oncall"),
    ]
    for n in found:
        assert measure(d, "execution", n) <= wait + SLACK_S
    _no_rejections(d)


def _desk_hours(config: Mapping[str, Any], now: datetime) -> bool:
    """Inside the config's desk-hours interval (weekdays and times, in its zone)?"""
    (interval,) = [t for t in config["time_intervals"] if t["name"] == "desk-hours"]
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    for spec in interval["time_intervals"]:
        local = now.astimezone(ZoneInfo(spec.get("location", "UTC")))
        allowed: set[str] = set()
        for rng in spec.get("weekdays", days):
            first, _, last = str(rng).partition(":")
            allowed |= set(days[days.index(first) : days.index(last or first) + 1])
        minute = local.hour * 60 + local.minute
        times = spec.get("times") or [{"start_time": "00:00", "end_time": "24:00"}]
        in_times = any(_minutes(t["start_time"]) <= minute < _minutes(t["end_time"]) for t in times)
        if days[local.weekday()] in allowed and in_times:
            return True
    return False


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


async def test_an_execution_warning_reaches_the_desk_only_in_desk_hours(
    delivery: Delivery,
) -> None:
    d, tgt = delivery, EXECUTION_WARNING["labels"]["target"]
    assert [r.receiver for r in d.routes(EXECUTION_WARNING)] == ["slack-execution", "slack-oncall"]
    wait = d.group_wait(EXECUTION_WARNING)
    staffed = _desk_hours(d.config, datetime.now(UTC))
    found = await d.sinks.wait_for(about(tgt), wait + SLACK_S + 2, count=2 if staffed else 1)
    await settle(d, "execution-warning", wait + SLACK_S)
    channels = sorted(n.receiver for n in d.sinks.matching(about(tgt)))
    expected = ["#execution-desk", "#tradeops-oncall"] if staffed else ["#tradeops-oncall"]
    assert channels == expected, f"inside desk hours now: {staffed}"
    for n in found:
        measure(d, "execution-warning", n)
    _no_rejections(d)


async def test_an_info_alert_notifies_nobody(delivery: Delivery) -> None:
    d, tgt = delivery, INFO["labels"]["target"]
    assert [r.receiver for r in d.routes(INFO)] == ["null"]
    # long enough for the slowest route's first flush to have happened, bounded
    await settle(d, "info", slowest_first_flush(d.config) + SLACK_S + 2)
    assert d.sinks.matching(lambda n: n.mentions(tgt)) == []
    (seen,) = await api_alerts(d.am, f'target="{tgt}"')
    assert seen["status"]["state"] == "active"
    assert [r["name"] for r in seen["receivers"]] == ["null"]


async def test_a_target_down_mutes_its_freshness_alert(delivery: Delivery) -> None:
    d, tgt = delivery, DOWN["labels"]["target"]
    wait = max(d.group_wait(DOWN), d.group_wait(STALE))
    found = await d.sinks.wait_for(about(tgt), wait + SLACK_S + 2, count=2)
    assert sorted((n.sink, n.alertnames) for n in found) == [
        ("pagerduty", ("TimescaleDown",)),
        ("slack", ("TimescaleDown",)),
    ]
    for n in found:
        measure(d, "inhibit", n)
    # the stale alert's own group flushed at the same group wait: nothing about it
    await settle(d, "inhibit", wait + SLACK_S)
    assert [n for n in d.sinks.matching(about(tgt)) if "TimescaleTableStale" in n.alertnames] == []
    (down,) = await api_alerts(d.am, 'alertname="TimescaleDown"', f'target="{tgt}"')
    (stale,) = await api_alerts(d.am, 'alertname="TimescaleTableStale"', f'target="{tgt}"')
    assert stale["status"]["state"] == "suppressed"
    assert stale["status"]["inhibitedBy"] == [down["fingerprint"]]
    assert down["status"]["inhibitedBy"] == [] and down["status"]["state"] == "active"
    _no_rejections(d)


async def test_the_paging_drill_routes_like_a_critical_page(delivery: Delivery) -> None:
    d = delivery
    critical_page = {"severity": "critical", "area": "exporter", "alertname": "ExporterAbsent"}
    assert d.routes(DRILL) == routes_for(d.config, critical_page)
    wait = d.group_wait(DRILL)
    found = await d.sinks.wait_for(lambda n: n.mentions(DRILL_ID), wait + SLACK_S + 2, count=2)
    assert sorted((n.sink, n.receiver) for n in found) == [
        ("pagerduty", "pagerduty-oncall"),
        ("slack", "#tradeops-oncall"),
    ]
    for n in found:
        assert n.alertnames == ("PagingDrill",)
        assert wait - 0.5 <= measure(d, "drill", n) <= wait + SLACK_S
    page = next(n for n in found if n.sink == "pagerduty")
    assert page.summary.startswith("[FIRING:1] PagingDrill: Paging drill: a test page")
    assert page.body["payload"]["severity"] == "critical"
    (seen,) = await api_alerts(d.am, f'drill_id="{DRILL_ID}"')
    assert seen["labels"]["drill"] == "true"
    _no_rejections(d)


async def test_an_absent_exporter_mutes_the_alerts_it_fed(delivery: Delivery) -> None:
    """Posted after the drill scenario: an absent exporter also mutes alerts without
    an instance (the drill's), by design of the shipped rules."""
    d = delivery
    gone, other = "exporter-8:9713", "exporter-9:9713"
    absent = bundle_alert("ExporterAbsent", instance=gone)
    muted = bundle_alert("RedisCanaryFailing", target=target("absent"), instance=gone)
    still = bundle_alert("RedisCanaryFailing", target=target("other"), instance=other)
    d.post("absent", [absent, muted, still])
    try:
        wait = max(d.group_wait(a) for a in (absent, muted, still))
        pages = await d.sinks.wait_for(
            lambda n: n.sink == "pagerduty" and (n.mentions(gone) or n.mentions(target("other"))),
            wait + SLACK_S + 2,
            count=2,
        )
        assert sorted(n.alertnames for n in pages) == [("ExporterAbsent",), ("RedisCanaryFailing",)]
        assert any(n.mentions(target("other")) for n in pages)
        for n in pages:
            measure(d, "absent", n, f"absent -> pagerduty {n.alertnames[0]}")
        await d.sinks.wait_for(lambda n: n.mentions(gone), SLACK_S, count=2)
        await settle(d, "absent", wait + SLACK_S)
        assert d.sinks.matching(lambda n: n.mentions(target("absent"))) == []
        (source,) = await api_alerts(d.am, 'alertname="ExporterAbsent"', f'instance="{gone}"')
        (target_,) = await api_alerts(d.am, f'target="{target("absent")}"')
        assert target_["status"]["inhibitedBy"] == [source["fingerprint"]]
        (free,) = await api_alerts(d.am, f'target="{target("other")}"')
        assert free["status"]["inhibitedBy"] == []
    finally:
        d.post("absent-resolved", [{**absent, "endsAt": rfc3339(time.time())}])
    _no_rejections(d)


async def test_the_watchdog_keeps_reaching_the_dead_mans_switch(delivery: Delivery) -> None:
    d = delivery
    (route,) = d.routes(WATCHDOG)
    assert route.receiver == "deadmans-switch" and route.group_wait == 0
    # the ping's cadence: the next flush after repeat_interval has passed
    cadence = max(route.group_interval, route.repeat_interval)
    assert cadence <= 120, "the shipped cadence is short: no shortening in this copy"

    def ping(n: Notification) -> bool:
        return n.sink == "heartbeat" and n.alertnames == ("Watchdog",)

    end = d.posted["watchdog"] + cadence + 2 * SLACK_S
    first, second = await d.sinks.wait_for(ping, max(1.0, end - time.monotonic()), count=2)
    assert measure(d, "watchdog", first, "watchdog -> first ping") <= route.group_wait + SLACK_S
    gap = second.received - first.received
    MEASURED["watchdog -> gap between pings"] = round(gap, 2)
    assert cadence - 1 <= gap <= cadence + SLACK_S
    assert (first.receiver, first.status) == ("deadmans-switch", "firing")
    assert first.body["receiver"] == "deadmans-switch"
    assert len(first.body["alerts"]) == 1  # max_alerts: 1
    _no_rejections(d)  # each ping carried the bearer token from its credentials file
