"""The Kafka probe's series (exporter/kinds/kafka/series.py) from hand-made cycle
data, no broker: the test broker cannot delete records (DeleteRecords drops the
connection) or move a log start, so a committed offset below the log start and a
partial topic sum are exercised here."""

from __future__ import annotations

from exporter.kinds.kafka import metrics as M
from exporter.kinds.kafka.cluster import Cluster
from exporter.kinds.kafka.config import KafkaTarget
from exporter.kinds.kafka.groups import Group
from exporter.kinds.kafka.offsets import Fetched, LogOffsets
from exporter.kinds.kafka.probe import KafkaState
from exporter.kinds.kafka.series import group_series, partition_label, topic_series
from exporter.kinds.kafka.windows import remember_ends
from exporter.probe import ProbeResult, Sample

from .support import values as _values


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
    group_series(r, state, target, "g", Group(coordinator=1, members=2), Fetched(offsets), log)
    assert set(state.histories["g"]) == {("t", 0), ("t", 1), ("u", 0)}
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
    state = KafkaState(target)
    group_series(r, state, target, "g", Group(coordinator=1), None, log)
    assert state.histories == {}
    assert _values(r, M.GROUP_STATE)[("c", "g", "unknown")] == 1
    assert _values(r, M.GROUP_LAG) == {}
    assert _values(r, M.GROUP_STATUS) == {}


def _topic_samples(
    ends: dict[tuple[str, int], int], starts: dict[tuple[str, int], int]
) -> dict[object, dict[tuple[str, ...], float]]:
    """The per-topic series ``topic_series`` makes of one cycle's log offsets."""
    target = KafkaTarget(name="c", bootstrap_servers="127.0.0.1:9092", interval=5, timeout=4)
    partitions: dict[str, dict[int, int]] = {}
    for topic, partition in ends.keys() | starts.keys():
        partitions.setdefault(topic, {})[partition] = 1
    r = ProbeResult()
    topic_series(r, target, Cluster(brokers=[], controller=1, partitions=partitions), ends, starts)
    out: dict[object, dict[tuple[str, ...], float]] = {}
    for s in r.samples:
        if isinstance(s, Sample):
            out.setdefault(s.family, {})[s.labels] = s.value
    return out


def test_retained_messages_count_from_the_log_start() -> None:
    """Hand-made offsets, no broker: Tansu cannot move a log start (DeleteRecords drops
    the connection), so a start above 0 is only reachable this way."""
    got = _topic_samples(ends={("t", 0): 10, ("t", 1): 7}, starts={("t", 0): 4, ("t", 1): 7})
    assert got[M.PARTITION_START] == {("c", "t", "0"): 4, ("c", "t", "1"): 7}
    assert got[M.TOPIC_RETAINED] == {("c", "t"): 6}


def test_retained_messages_are_absent_when_a_log_start_is_missing() -> None:
    """Hand-made offsets, no broker: the earliest ListOffsets failing for a partition
    whose latest one answered (a leader change between the two) cannot be forced on
    Tansu. The sum would be partial, and docs/kafka.md says partial sums are absent."""
    got = _topic_samples(ends={("t", 0): 10, ("t", 1): 7}, starts={("t", 0): 4})
    assert got[M.TOPIC_END] == {("c", "t"): 17}
    assert got.get(M.TOPIC_RETAINED, {}) == {}


def test_a_partitions_series_share_one_label_tuple_and_partition_string() -> None:
    """100,000 group partitions make 300,000 series: the samples of one partition share
    its label tuple, and a partition number is one string however often it is used."""
    target = KafkaTarget(name="c", bootstrap_servers="127.0.0.1:9092", interval=5, timeout=4)
    state = KafkaState(target)
    remember_ends(state, target, {("t", 7): 10}, 990.0)
    log = LogOffsets(ends={("t", 7): 10}, starts={("t", 7): 0}, at=1000.0)
    r = ProbeResult()
    group = Group(coordinator=1, members=1)
    group_series(r, state, target, "g", group, Fetched({("t", 7): 4}), log)
    families = (M.COMMITTED, M.LAG, M.LAG_SECONDS)
    mine = [s for s in r.samples if isinstance(s, Sample) and s.family in families]
    assert [(s.family, s.value) for s in mine] == [
        (M.COMMITTED, 4.0),
        (M.LAG, 6.0),
        (M.LAG_SECONDS, 10.0),  # a floor: the one log-end point is newer than offset 4
    ]
    assert len({id(s.labels) for s in mine}) == 1
    assert mine[0].labels == ("c", "g", "t", "7")
    assert mine[0].labels[3] is partition_label(7)
    assert partition_label(70000) == "70000"
