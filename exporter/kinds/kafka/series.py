"""The Kafka probe's series: the cluster's, the topics', and each group's.

A group's series are built in three steps: ``windows.observe`` adds this cycle's
points to its status windows and reads each partition; ``aggregate`` sums the
readings per topic; the ``_*_series`` functions emit. The per-partition series,
100,000 and more on a large cluster, are appended as ``Sample`` objects directly,
the three families of one partition sharing one label tuple.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING

from ...probe import ProbeResult, Sample
from . import metrics as M
from .cluster import Cluster
from .config import KafkaTarget
from .groups import GROUP_STATES, Group
from .lag import LABELS, STATUSES, Status, Totals
from .offsets import Fetched, LogOffsets, Offsets
from .windows import Reading, advanced_at, drain, observe

if TYPE_CHECKING:
    from .probe import KafkaState

_PARTITION_LABELS = tuple(map(str, range(1 << 12)))


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (if it runs) while a cycle's series are built.

    On a large cluster that is 300,000 new samples that all live until they are
    rendered, and none is part of a reference cycle: the collector would count them
    as survivors and scan them, and every status window, two or three times over
    (a quarter of the time the series take). Garbage is still freed by reference
    counting meanwhile; the collector runs again afterwards.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def partition_label(partition: int) -> str:
    """The ``partition`` label value (one shared string per number)."""
    if 0 <= partition < len(_PARTITION_LABELS):
        return _PARTITION_LABELS[partition]
    return str(partition)


def cluster_series(
    r: ProbeResult, name: str, cluster: Cluster, groups: int, failed: dict[int, str]
) -> None:
    """Brokers, their reachability, and the cluster-wide counts."""
    r.add(M.BROKERS, len(cluster.brokers), name)
    for node, host, port, rack in cluster.brokers:
        r.add(M.BROKER_INFO, 1, name, str(node), f"{host}:{port}", rack or "")
        r.add(M.BROKER_REACHABLE, node not in failed, name, str(node))
    r.add(M.CONTROLLER, cluster.controller, name)
    r.add(M.TOPICS, len(cluster.partitions), name)
    r.add(M.PARTITIONS, sum(len(p) for p in cluster.partitions.values()), name)
    r.add(M.OFFLINE, cluster.offline, name)
    r.add(M.UNDER_REPLICATED, cluster.under_replicated, name)
    r.add(M.GROUPS, groups, name)


def topic_series(
    r: ProbeResult, target: KafkaTarget, cluster: Cluster, ends: Offsets, starts: Offsets
) -> None:
    """Each topic's partition count, summed end offsets and retained messages (absent
    when a partition lacks its offset: no partial sums), and per partition its end and
    start offsets (granularity ``partition``)."""
    name = target.name
    per_partition = target.granularity == "partition"
    for topic, leaders in cluster.partitions.items():
        r.add(M.TOPIC_PARTITIONS, len(leaders), name, topic)
        end_sum: int | None = 0
        retained: int | None = 0
        for partition in leaders:
            end, start = ends.get((topic, partition)), starts.get((topic, partition))
            end_sum = None if end is None or end_sum is None else end_sum + end
            if end is None or start is None or retained is None:
                retained = None
            else:
                retained += end - start
            if per_partition and end is not None:
                label = partition_label(partition)
                r.add(M.PARTITION_END, end, name, topic, label)
                r.add(M.PARTITION_START, start, name, topic, label)
        r.add(M.TOPIC_END, end_sum, name, topic)
        r.add(M.TOPIC_RETAINED, retained, name, topic)


@dataclass(slots=True)
class TopicSums:
    """One group's readings of one topic, summed."""

    lag: int = 0
    max_seconds: float | None = None
    lower_bound: bool = False
    """Whether ``max_seconds`` is a floor (see ``OffsetTable.time_lag``)."""
    committed: int = 0
    end: int = 0
    partitions: int = 0
    expired: int = 0
    """Partitions whose committed offset is below the log start."""


def aggregate(reading: Reading, starts: Offsets) -> dict[str, TopicSums]:
    """The readings summed per topic, in the order the topics were first read."""
    topics: dict[str, TopicSums] = {}
    columns = zip(
        reading.keys, reading.committed, reading.ends, reading.lags, reading.time_lags, strict=True
    )
    for key, committed, end, lag, estimate in columns:
        sums = topics.get(key[0])
        if sums is None:
            sums = topics[key[0]] = TopicSums()
        sums.lag += lag
        sums.committed += committed
        sums.end += end
        sums.partitions += 1
        sums.expired += committed < starts.get(key, 0)
        if estimate is not None:
            seconds, lower = estimate
            if sums.max_seconds is None or seconds > sums.max_seconds:
                sums.max_seconds, sums.lower_bound = seconds, lower
    return topics


def group_series(
    r: ProbeResult,
    st: KafkaState,
    target: KafkaTarget,
    group_name: str,
    group: Group,
    fetched: Fetched | None,
    log: LogOffsets,
) -> None:
    """Emit one group's series and add this cycle's points to its windows.

    A partition read this cycle (committed offset and log-end offset) gets a point and
    its series. One that could not be read (the group's OffsetFetch failed, the partition
    was answered with an error or has no log-end offset) gets neither: its window is kept
    as it is (see ``windows.prune``), its series are absent, and so are the aggregates
    of its topic, which would be partial. Group-level series cover the partitions read.
    """
    name = target.name
    for state in GROUP_STATES:
        r.add(M.GROUP_STATE, state == group.state, name, group_name, state)
    r.add(M.GROUP_MEMBERS, group.members, name, group_name)
    if fetched is None:
        return
    reading = observe(st, target, group_name, group, fetched, log)
    topics = aggregate(reading, log.starts)
    complete = {t: s for t, s in topics.items() if t not in reading.incomplete}
    if target.granularity == "partition":
        _partition_series(r, name, group_name, reading)
    _topic_sums_series(r, st, target, group_name, complete, log.at)
    if reading.keys:
        _group_totals_series(r, st, name, group_name, reading, topics)


def _partition_series(r: ProbeResult, name: str, group_name: str, reading: Reading) -> None:
    """Committed offset, lag and time lag of each partition read."""
    labels = [(name, group_name, t, partition_label(p)) for t, p in reading.keys]
    out = r.samples
    out.extend(map(Sample, repeat(M.COMMITTED), labels, map(float, reading.committed)))
    out.extend(map(Sample, repeat(M.LAG), labels, map(float, reading.lags)))
    out.extend(
        Sample(M.LAG_SECONDS, lbl, float(estimate[0]))
        for lbl, estimate in zip(labels, reading.time_lags, strict=True)
        if estimate is not None
    )


def _topic_sums_series(
    r: ProbeResult,
    st: KafkaState,
    target: KafkaTarget,
    group_name: str,
    topics: dict[str, TopicSums],
    now: float,
) -> None:
    """Per-topic sums, time lag and drain; ``topics`` holds only the topics all of
    whose known partitions were read this cycle, so no partial total is added."""
    name = target.name
    totals = {t: Totals(now, s.partitions, s.committed, s.end) for t, s in topics.items()}
    drains = drain(st, target, group_name, totals, {t: s.lag for t, s in topics.items()})
    for topic, sums in topics.items():
        labels = (name, group_name, topic)
        r.add(M.TOPIC_LAG, sums.lag, *labels)
        r.add(M.TOPIC_COMMITTED, sums.committed, *labels)
        r.add(M.TOPIC_EXPIRED, sums.expired, *labels)
        r.add(M.TOPIC_LAG_SECONDS, sums.max_seconds, *labels)
        if sums.max_seconds is not None:
            r.add(M.TOPIC_LOWER_BOUND, sums.lower_bound, *labels)
        estimate = drains[topic]
        if estimate is not None:
            r.add(M.DRAIN, estimate[0], *labels)
            r.add(M.DRAINING, estimate[1], *labels)


def _group_totals_series(
    r: ProbeResult,
    st: KafkaState,
    name: str,
    group_name: str,
    reading: Reading,
    topics: dict[str, TopicSums],
) -> None:
    """The group's status, partitions by status, lag, time lag and last advance."""
    counts = reading.counts
    worst = max((s for s, n in counts.items() if n), default=Status.OK)
    for status in STATUSES:
        label = LABELS[status]
        r.add(M.GROUP_STATUS, status == worst, name, group_name, label)
        r.add(M.GROUP_PARTITIONS_STATUS, counts[status], name, group_name, label)
    r.add(M.GROUP_LAG, sum(s.lag for s in topics.values()), name, group_name)
    ages = [s.max_seconds for s in topics.values() if s.max_seconds is not None]
    r.add(M.GROUP_LAG_SECONDS, max(ages) if ages else None, name, group_name)
    r.add(M.GROUP_ADVANCED, advanced_at(st, group_name), name, group_name)
