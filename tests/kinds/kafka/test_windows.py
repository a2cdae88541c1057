"""The memory kept across cycles (exporter/kinds/kafka/windows.py), from hand-made
cycle data: the test broker never answers OffsetFetch with an error and has no leader
elections, so cycles that cannot read a group or a partition are exercised here, on
what ``probe`` does with one cycle's answers: prune, then add points and emit."""

from __future__ import annotations

import pytest

from exporter.kinds.kafka import metrics as M
from exporter.kinds.kafka.cluster import Cluster
from exporter.kinds.kafka.config import KafkaTarget
from exporter.kinds.kafka.groups import Group
from exporter.kinds.kafka.lag import Status
from exporter.kinds.kafka.offsets import Discovery, Fetched, LogOffsets
from exporter.kinds.kafka.probe import KafkaState
from exporter.kinds.kafka.series import group_series
from exporter.kinds.kafka.windows import prune
from exporter.probe import ProbeResult

from .support import values as _values

CLUSTER = Cluster(brokers=[], controller=1, partitions={"t": {0: 1, 1: 1}, "u": {0: 1}})
STOPPED = Group(coordinator=1, state="empty", members=0)


def _cycle(
    state: KafkaState,
    fetched: dict[str, Fetched],
    ends: dict[tuple[str, int], int],
    at: float,
    groups: dict[str, Group] | None = None,
    cluster: Cluster = CLUSTER,
) -> ProbeResult:
    """What ``probe`` does with one cycle's answers: prune, then add points and emit."""
    groups = {"g": STOPPED} if groups is None else groups
    r = ProbeResult()
    prune(state, cluster, groups, fetched)
    log = LogOffsets(ends, dict.fromkeys(ends, 0), at)
    for name, group in groups.items():
        group_series(r, state, state.target, name, group, fetched.get(name), log)
    return r


def _status(r: ProbeResult) -> str | None:
    on = [labels[2] for labels, v in _values(r, M.GROUP_STATUS).items() if v == 1]
    return on[0] if on else None


def _window_target() -> KafkaTarget:
    return KafkaTarget(
        name="c", bootstrap_servers="127.0.0.1:9092", interval=5, timeout=4, status_window=3
    )


def test_missed_cycles_keep_the_window_so_stop_needs_window_real_points_not_a_restart() -> None:
    state = KafkaState(_window_target())
    stuck = Fetched({("t", 0): 4, ("u", 0): 5})  # t/0 stuck behind, u/0 caught up
    ends = {("t", 0): 10, ("t", 1): 0, ("u", 0): 5}
    r = _cycle(state, {"g": stuck}, ends, 100.0)
    assert _status(r) == "ok"
    # the group's OffsetFetch fails as a whole: no point, the windows are kept
    r = _cycle(state, {}, ends, 200.0)
    assert _values(r, M.GROUP_STATUS) == {} and _values(r, M.LAG) == {}
    assert [(len(h), h.committed) for h in state.histories["g"].values()] == [(1, 4), (1, 5)]
    r = _cycle(state, {"g": stuck}, ends, 300.0)
    assert _status(r) == "ok"  # two real points: not a full window yet
    # t/0 has no log-end offset (leader election): absent, no point, window kept
    r = _cycle(state, {"g": stuck}, {("t", 1): 0, ("u", 0): 5}, 400.0)
    assert _values(r, M.LAG) == {("c", "g", "u", "0"): 0}
    assert ("c", "g", "t") not in _values(r, M.TOPIC_LAG)  # a partial sum would lie
    assert _values(r, M.GROUP_ADVANCED) == {("c", "g"): 100.0}
    history = state.histories["g"][("t", 0)]
    assert (len(history), history.committed, history.moved_at) == (2, 4, 100.0)
    # the third real point fills the window: stop, five cycles after the first
    r = _cycle(state, {"g": stuck}, ends, 500.0)
    assert _status(r) == "stop"
    assert state.histories["g"][("t", 0)].status(has_members=False) is Status.STOP
    # first seen at 100 and never moved since: the missed cycles did not reset it
    assert _values(r, M.GROUP_ADVANCED) == {("c", "g"): 100.0}
    assert _values(r, M.LAG)[("c", "g", "t", "0")] == 6


def test_partition_answered_with_an_error_keeps_its_window_and_the_drain_rate() -> None:
    state = KafkaState(_window_target())
    ends = {("t", 0): 100, ("t", 1): 100, ("u", 0): 0}
    _cycle(state, {"g": Fetched({("t", 0): 0, ("t", 1): 0})}, ends, 0.0)
    failed = Fetched({("t", 0): 10}, failed=frozenset({("t", 1)}))
    r = _cycle(state, {"g": failed}, {k: v + 10 for k, v in ends.items()}, 10.0)
    assert _values(r, M.COMMITTED) == {("c", "g", "t", "0"): 10}
    # the topic's sums and drain would cover one partition of two: absent this cycle
    assert _values(r, M.TOPIC_COMMITTED) == {} and _values(r, M.DRAINING) == {}
    assert set(state.histories["g"]) == {("t", 0), ("t", 1)}
    assert len(state.drains[("g", "t")].window) == 1
    r = _cycle(state, {"g": Fetched({("t", 0): 40, ("t", 1): 40})}, ends, 20.0)
    # one window over both real points: consumed 80, produced 0 in 20 s, lag 120
    assert len(state.drains[("g", "t")].window) == 2
    assert _values(r, M.DRAIN) == {("c", "g", "t"): pytest.approx(30.0)}
    assert _values(r, M.TOPIC_COMMITTED) == {("c", "g", "t"): 80}


def test_vanished_group_deleted_partition_and_dropped_commit_are_pruned() -> None:
    state = KafkaState(_window_target())
    ends = {("t", 0): 10, ("t", 1): 10, ("u", 0): 10}
    everything = Fetched({("t", 0): 1, ("t", 1): 1, ("u", 0): 1})
    two = {"g": STOPPED, "h": STOPPED}
    _cycle(state, {"g": everything, "h": everything}, ends, 0.0, groups=two)
    state.discovery["h"] = Discovery(topics={"t", "u"})
    assert set(state.histories) == {"g", "h"} and len(state.drains) == 4
    # h is no longer listed; g's OffsetFetch answered t/1 without a commit; u was deleted
    no_u = Cluster(brokers=[], controller=1, partitions={"t": {0: 1, 1: 1}})
    answer = Fetched({("t", 0): 2}, asked=frozenset({"t"}))
    _cycle(state, {"g": answer}, ends, 10.0, cluster=no_u)
    assert state.histories == {"g": {("t", 0): state.histories["g"][("t", 0)]}}
    assert set(state.drains) == {("g", "t")}
    assert "h" not in state.discovery
