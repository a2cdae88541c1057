"""The Kafka probe's series built from hand-made cycle data (no broker).

The test broker cannot delete records (DeleteRecords drops the connection), so
a committed offset below the log start is exercised here, on the function that
turns one cycle's offsets into series.
"""

from __future__ import annotations

from exporter.catalogue import kafka as M
from exporter.probe import ProbeResult, Sample
from exporter.probes.kafka import Group, KafkaState, KafkaTarget, LogOffsets, _group_series


def _values(r: ProbeResult, family: object) -> dict[tuple[str, ...], float]:
    return {s.labels: s.value for s in r.samples if isinstance(s, Sample) and s.family is family}


def test_group_series_flags_offsets_below_log_start_and_sums_commits() -> None:
    target = KafkaTarget(name="c", bootstrap_servers="127.0.0.1:9092", interval=5, timeout=4)
    state = KafkaState(target)
    log = LogOffsets(
        ends={("t", 0): 10, ("t", 1): 10, ("u", 0): 7},
        starts={("t", 0): 3, ("t", 1): 3, ("u", 0): 0},
        at=1000.0,
    )
    offsets = {("t", 0): 1, ("t", 1): 8, ("u", 0): 7}
    r = ProbeResult()
    seen = _group_series(r, state, target, "g", Group(coordinator=1, members=2), offsets, log)
    assert seen == {("g", "t", 0), ("g", "t", 1), ("g", "u", 0)}
    assert _values(r, M.TOPIC_EXPIRED) == {("c", "g", "t"): 1, ("c", "g", "u"): 0}
    assert _values(r, M.TOPIC_COMMITTED) == {("c", "g", "t"): 9, ("c", "g", "u"): 7}
    assert _values(r, M.TOPIC_LAG) == {("c", "g", "t"): 11, ("c", "g", "u"): 0}
    assert _values(r, M.GROUP_LAG) == {("c", "g"): 11}
    assert _values(r, M.GROUP_MEMBERS) == {("c", "g"): 2}
    # no log-end samples were recorded: no time lag is invented
    assert _values(r, M.LAG_SECONDS) == {}
    assert _values(r, M.GROUP_STATUS)[("c", "g", "ok")] == 1


def test_group_without_readable_offsets_reports_state_only() -> None:
    target = KafkaTarget(name="c", bootstrap_servers="127.0.0.1:9092", interval=5, timeout=4)
    r = ProbeResult()
    log = LogOffsets({}, {}, 0.0)
    seen = _group_series(r, KafkaState(target), target, "g", Group(coordinator=1), None, log)
    assert seen == set()
    assert _values(r, M.GROUP_STATE)[("c", "g", "unknown")] == 1
    assert _values(r, M.GROUP_LAG) == {}
    assert _values(r, M.GROUP_STATUS) == {}
