"""The inhibit rules, checked statically against the rules bundle.

Each rule's alert names exist in the bundle; and, evaluating the rules as
Alertmanager 0.25 does (``am.InhibitRule.mutes``) on the labels each bundle
alert fires with, every pair of bundle alerts about the same thing mutes
exactly when one of the relations below says it should: a target down mutes
that target's data alerts, the critical step of a pair mutes its warning
step, an absent exporter mutes everything it would have told. Inhibition on a
running Alertmanager is tested with the delivery tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from bundle.drill import ALERTNAME as DRILL_ALERTNAME

from . import am

RULES = am.inhibit_rules()
ALERTS = am.bundle_alerts()
BY_NAME = {a.name: a for a in ALERTS}
NAMES = set(BY_NAME) | {DRILL_ALERTNAME}
"""The bundle's rules, and the alert the paging drill posts."""
AREA = {a.name: a.static.get("area", "") for a in ALERTS}

Predicate = Callable[[am.BundleAlert], bool]


def in_area(area: str, *but: str) -> Predicate:
    return lambda t: AREA[t.name] == area and t.name not in but


# A target down -> the alerts about that target it mutes.
DOWN: dict[str, Predicate] = {
    "RedisDown": in_area("redis", "RedisDown"),
    "TimescaleDown": in_area("timescale", "TimescaleDown"),
    "EventBusHealthEndpointDown": in_area(
        "eventbus", "EventBusHealthEndpointDown", "EventBusNotRunning"
    ),
    "EventBusNotRunning": in_area("eventbus", "EventBusHealthEndpointDown", "EventBusNotRunning"),
    "KafkaClusterDown": in_area("kafka", "KafkaClusterDown"),
    "KafkaBrokerUnreachable": lambda t: (
        t.name.startswith("KafkaConsumer") or t.name == "KafkaPartitionsUnderReplicated"
    ),
    "FixMonitoringSessionFailing": lambda t: (
        t.name.startswith("FixMonitoring")
        and t.name not in {"FixMonitoringSessionFailing", "FixMonitoringNotReporting"}
    ),
    "FixMonitoringNotReporting": lambda t: (
        t.name.startswith("FixMonitoring")
        and t.name not in {"FixMonitoringSessionFailing", "FixMonitoringNotReporting"}
    ),
}


def backups_down(t: am.BundleAlert) -> bool:
    """ProbeTargetDown (a warning) of a backups target mutes its set's warnings."""
    return AREA[t.name] == "backups" and t.static["severity"] == "warning"


# The critical step of a pair -> its warning step; a cause -> its consequence.
CONSEQUENCES = {
    (cause, effect)
    for cause in ("KafkaConsumerGroupStopped", "KafkaConsumerGroupStalled")
    for effect in (
        "KafkaConsumerLagOverObjective",
        "KafkaConsumerLagFarOverObjective",
        "KafkaConsumerLagSustained",
        "KafkaConsumerNotDraining",
        "KafkaConsumerGroupNoMembers",
    )
} | {
    ("RedisRdbSaveFailing", "RedisCanaryFailing"),
    ("RedisAofWriteFailing", "RedisCanaryFailing"),
}
ESCALATIONS = CONSEQUENCES | {
    ("TimescaleXidWraparoundNear", "TimescaleXidAgeHigh"),
    ("BackupRpoFarOverObjective", "BackupRpoOverObjective"),
    ("KafkaConsumerLagFarOverObjective", "KafkaConsumerLagOverObjective"),
    ("KafkaConsumerLagSustained", "KafkaConsumerLagOverObjective"),
    ("EventBusStatusFailing", "EventBusStatusDegraded"),
    ("EventBusCanaryLossHigh", "EventBusCanaryLost"),
    ("SlaHeartbeatMissedTwice", "SlaHeartbeatMissed"),
}


def slo_escalation(source: am.BundleAlert, target: am.BundleAlert) -> bool:
    """An SLO's fast-burn page mutes its slow-burn ticket for the same thing."""
    return (
        "slo" in source.labels
        and source.labels["slo"] == target.labels.get("slo")
        and (source.static["severity"], target.static["severity"]) == ("critical", "warning")
    )


NEVER_MUTED = {"Watchdog", "ExporterAbsent"}


def should_mute(source: am.BundleAlert, target: am.BundleAlert) -> bool:
    """The policy: does a firing ``source`` mute ``target`` (both about the same thing)?"""
    if target.name in NEVER_MUTED or source.name == target.name:
        return False
    if source.name == "ExporterAbsent":
        return am.exporter_fed(target.labels)
    if (source.name, target.name) in ESCALATIONS or slo_escalation(source, target):
        return True
    if source.name == "ProbeTargetDown":
        return source.labels.get("kind") == "backups" and backups_down(target)
    return source.name in DOWN and DOWN[source.name](target)


def with_labels(alert: am.BundleAlert, **labels: str) -> am.BundleAlert:
    return am.BundleAlert(alert.name, alert.file, alert.static, {**alert.labels, **labels}, True)


# --- the names -----------------------------------------------------------------


def literal_names(pattern: str) -> list[str] | None:
    """The names of a plain alternation ``A|B|C``, or None for a real regex."""
    parts = pattern.split("|")
    return parts if all(re.fullmatch(r"[A-Za-z0-9_]+", p) for p in parts) else None


def test_every_alertname_of_an_inhibit_rule_exists_in_the_bundle() -> None:
    seen = 0
    for rule in RULES:
        for m in rule.source + rule.target:
            if m.name != "alertname":
                continue
            seen += 1
            names = [m.value] if m.op in ("=", "!=") else literal_names(m.value)
            if names is None:  # a pattern such as KafkaConsumer.+: it must select something
                assert any(re.fullmatch(m.value, n) for n in NAMES), m
            else:
                assert set(names) <= NAMES, f"rule {rule.index}: {set(names) - NAMES}"
    assert seen >= 20


def test_every_down_and_escalation_alert_named_here_exists() -> None:
    assert set(DOWN) | {"ProbeTargetDown", "ExporterAbsent"} <= NAMES
    assert {n for pair in ESCALATIONS for n in pair} <= NAMES


def test_an_absent_exporter_covers_every_area_of_the_bundle() -> None:
    absent = [r for r in RULES if any(m.value == "ExporterAbsent" for m in r.source)]
    assert len(absent) == 3
    for rule in absent:
        area = next(m for m in rule.target if m.name == "area")
        for alert in ALERTS:
            assert area.matches(alert.static), (rule.index, alert.name)


SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def test_no_alert_is_muted_by_a_less_severe_one() -> None:
    """What mutes a page must page itself: a warning never hides a critical."""
    for source in ALERTS:
        for target in ALERTS:
            if am.muted_by(RULES, target.labels, source.labels):
                rank = SEVERITY_RANK[source.static["severity"]]
                assert rank >= SEVERITY_RANK[target.static["severity"]], (source.name, target.name)


# --- behaviour on the bundle's labels ------------------------------------------


def test_every_pair_of_bundle_alerts_mutes_exactly_as_the_policy_says() -> None:
    """All pairs (source, target) about the same thing (the same identifying
    label values), with ProbeTargetDown both for a backups target and another."""
    sources = [*ALERTS, with_labels(BY_NAME["ProbeTargetDown"], kind="fix_store")]
    sources.append(with_labels(BY_NAME["ProbeTargetDown"], kind="backups"))
    wrong = []
    for source in sources:
        for target in ALERTS:
            got = bool(am.muted_by(RULES, target.labels, source.labels))
            if got != should_mute(source, target):
                kind = source.labels.get("kind", "")
                wrong.append(f"{source.name}({kind}) -> {target.name}: muted {got}")
    assert wrong == []


def test_nothing_is_muted_by_an_alert_about_another_target() -> None:
    for source in ALERTS:
        if source.name == "ExporterAbsent":
            continue
        for target in ALERTS:
            other = am.other_target(target.labels)
            if other == target.labels:
                continue
            assert not am.muted_by(RULES, other, source.labels), (source.name, target.name)


def test_the_equal_labels_are_on_both_sides() -> None:
    """For the rules that name their cause (not the generic severity and SLO
    rules, where a label missing on both sides is meant, nor the absent
    exporter), every pair they mute carries each ``equal`` label."""
    for source in ALERTS:
        for target in ALERTS:
            for index in am.muted_by(RULES, target.labels, source.labels):
                rule = RULES[index]
                names = {m.value for m in rule.source if m.name == "alertname"}
                if not names or "ExporterAbsent" in names:
                    continue
                for name in rule.equal:
                    assert name in source.labels and name in target.labels, (
                        index,
                        name,
                        source.name,
                        target.name,
                    )


def test_critical_mutes_the_warning_of_the_same_alert_and_target() -> None:
    for alert in ALERTS:
        if alert.name in NEVER_MUTED:
            continue
        warning = {**alert.labels, "severity": "warning"}
        crit = {**alert.labels, "severity": "critical"}
        assert am.muted_by(RULES, warning, crit), alert.name
        assert not am.muted_by(RULES, crit, warning), alert.name
        assert not am.muted_by(RULES, am.other_target(warning), crit), alert.name
        info = {**alert.labels, "severity": "info"}
        assert not am.muted_by(RULES, info, crit), "critical mutes warnings only"


@pytest.mark.parametrize(
    ("form", "labels"),
    [
        ("scrape failing", {"job": am.JOB, "instance": am.INSTANCE}),
        ("job absent", {"job": am.JOB}),
    ],
)
def test_an_absent_exporter_mutes_every_alert_on_its_series(
    form: str, labels: dict[str, str]
) -> None:
    source = {"alertname": "ExporterAbsent", "severity": "critical", "area": "exporter", **labels}
    fed = [a for a in ALERTS if am.exporter_fed(a.labels)]
    assert len(fed) < len(ALERTS), "the runtime's alerts are not the exporter's"
    for alert in ALERTS:
        muted = bool(am.muted_by(RULES, alert.labels, source))
        expect = alert.name not in NEVER_MUTED and am.exporter_fed(alert.labels)
        assert muted == expect, (form, alert.name)


def test_another_exporter_absent_mutes_only_what_cannot_say_where_it_came_from() -> None:
    """With several exporters, one failing scrape mutes the alerts of that
    exporter, and the aggregated ones that carry no instance (documented)."""
    source = {
        "alertname": "ExporterAbsent",
        "severity": "critical",
        "area": "exporter",
        "job": am.JOB,
        "instance": "exporter-1:9713",
    }
    fed = [a for a in ALERTS if am.exporter_fed(a.labels) and a.name not in NEVER_MUTED]
    carrying = [a for a in fed if "instance" in a.labels]
    aggregated = [a for a in fed if "instance" not in a.labels]
    assert carrying and aggregated
    for alert in carrying:
        assert not am.muted_by(RULES, alert.labels, source), alert.name
    for alert in aggregated:
        assert am.muted_by(RULES, alert.labels, source), alert.name


def test_sla_alerts_are_muted_only_by_an_absent_exporter_or_their_own_critical_step() -> None:
    sla = [a for a in ALERTS if AREA[a.name] == "sla"]
    assert sla
    for target in sla:
        for source in ALERTS:
            if am.muted_by(RULES, target.labels, source.labels):
                assert source.name == "ExporterAbsent" or (source.name, target.name) in ESCALATIONS
                assert am.exporter_fed(target.labels)


def test_a_rule_never_mutes_its_own_source() -> None:
    """Alertmanager lets an alert matching both sides mute only alerts that do
    not; our rules do not rely on it: no bundle alert matches both sides."""
    for rule in RULES:
        for alert in ALERTS:
            source_side = am.all_match(rule.source, alert.labels)
            assert not (source_side and am.all_match(rule.target, alert.labels)), (
                rule.index,
                alert.name,
            )
