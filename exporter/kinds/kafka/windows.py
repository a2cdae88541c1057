"""The memory kept across cycles: remembered log ends, status and drain windows.

Each cycle adds the log-end offsets read to the partitions' interpolation tables
(``remember_ends``), forgets what is known to be gone (``prune``), then adds one
point to the status window of every group partition read (``observe``) and one
total to the drain window of every group topic read whole (``drain``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .cluster import Cluster
from .config import KafkaTarget
from .groups import Group
from .lag import STATUSES, DrainHistory, OffsetTable, PartitionHistory, Point, Status, Totals
from .offsets import Fetched, LogOffsets, Offsets, PartitionKey

if TYPE_CHECKING:
    from .probe import KafkaState

TimeLag = tuple[float, bool]
"""(seconds, lower bound) of a time-lag estimate."""


@dataclass(slots=True)
class Reading:
    """One group's partitions read this cycle (committed offset and log-end offset),
    in the order of the group's OffsetFetch answer, as columns."""

    keys: list[PartitionKey] = field(default_factory=list)
    committed: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    lags: list[int] = field(default_factory=list)
    time_lags: list[TimeLag | None] = field(default_factory=list)
    """The time-lag estimate of each; None while its table is empty."""
    counts: dict[Status, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    """Partitions by status."""
    incomplete: set[str] = field(default_factory=set)
    """Topics with a partition known to the group (a window, a commit, an error) that
    was not read: their sums would be partial."""


def remember_ends(st: KafkaState, target: KafkaTarget, ends: Offsets, now: float) -> None:
    """Add this cycle's log-end offsets to the partitions' interpolation tables."""
    tables = st.tables
    for key, end in ends.items():
        table = tables.get(key)
        if table is None:
            table = tables[key] = OffsetTable(target.lag_table_size)
        table.add(end, now)


def observe(
    st: KafkaState, target: KafkaTarget, name: str, group: Group, fetched: Fetched, log: LogOffsets
) -> Reading:
    """Add this cycle's point to the window of each of the group's partitions read, and
    read its lag, time lag and status. A partition not read (no log-end offset, an
    error, no answer) gets no point: its window is kept as it is."""
    has_members = bool(group.members)  # unknown counts as none: STALL needs evidence
    ends, now, tables, size = log.ends, log.at, st.tables, target.status_window
    windows = st.histories.get(name)
    r = Reading()
    counts = r.counts
    for key, committed in fetched.committed.items():
        end = ends.get(key)
        if end is None:
            continue
        lag = max(0, end - committed)
        if windows is None:
            windows = st.histories[name] = {}
        history = windows.get(key)
        if history is None:
            history = windows[key] = PartitionHistory(size)
        history.add(Point(now, committed, lag))
        counts[history.status(has_members)] += 1
        table = tables.get(key)
        r.keys.append(key)
        r.committed.append(committed)
        r.ends.append(end)
        r.lags.append(lag)
        r.time_lags.append(table.time_lag(committed, now) if table is not None else None)
    known = (windows or {}).keys() | fetched.committed.keys() | fetched.failed
    r.incomplete = {t for t, _ in known.difference(r.keys)}
    return r


def drain(
    st: KafkaState, target: KafkaTarget, name: str, totals: dict[str, Totals], lags: dict[str, int]
) -> dict[str, tuple[float | None, bool] | None]:
    """Add each topic's totals to the group's drain window of it; each topic's
    ``DrainHistory.estimate`` for its lag."""
    out: dict[str, tuple[float | None, bool] | None] = {}
    for topic, total in totals.items():
        history = st.drains.get((name, topic))
        if history is None:
            history = st.drains[(name, topic)] = DrainHistory(target.status_window)
        history.add(total)
        out[topic] = history.estimate(lags[topic])
    return out


def advanced_at(st: KafkaState, name: str) -> float:
    """When any committed offset of the group was last seen to move, over every kept
    window (read this cycle or not: a real past observation each)."""
    return max(h.moved_at for h in st.histories[name].values())


def gone(key: PartitionKey, cluster: Cluster, fetched: Fetched | None) -> bool:
    """Whether a listed group's partition is known to be gone: the metadata no longer
    has it, or the group's OffsetFetch succeeded and holds no commit for it."""
    topic, partition = key
    if partition not in cluster.partitions.get(topic, {}):
        return True
    return fetched is not None and fetched.uncommitted(key)


def prune(
    st: KafkaState,
    cluster: Cluster,
    groups: dict[str, Group],
    fetched: dict[str, Fetched],
    listed_by_all: bool = True,
) -> None:
    """Forget what is known to be gone, before this cycle's points are added.

    A group's windows and discovery go when ListGroups no longer lists it (or the filter
    drops it), in a cycle where every broker in the metadata answered ListGroups
    (``listed_by_all``); while one did not, an unlisted group may be coordinated there
    (or have moved there): it is unknown, not gone, and keeps them. A partition's window
    goes when ``gone``. A group whose OffsetFetch failed, or a partition answered with
    an error or without a log-end offset, keeps its window unchanged: one unreadable
    cycle does not restart the status window.
    """
    for known in (st.tables, st.keys):
        for key in [k for k in known if k[1] not in cluster.partitions.get(k[0], {})]:
            del known[key]
    for name in list(st.histories):
        windows = st.histories[name]
        answer = fetched.get(name)
        unlisted = listed_by_all and name not in groups
        for key in [k for k in windows if unlisted or gone(k, cluster, answer)]:
            del windows[key]
        if not windows:
            del st.histories[name]
    live = {(g, t) for g, windows in st.histories.items() for t, _ in windows}
    for gt in [k for k in st.drains if k not in live]:
        del st.drains[gt]
    if listed_by_all:
        for name in [n for n in st.discovery if n not in groups]:
            del st.discovery[name]
