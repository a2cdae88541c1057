"""The pure lag arithmetic on hand-built sequences: interpolation table, status, drain."""

from __future__ import annotations

import random
from collections import deque

import pytest

from exporter.kinds.kafka.lag import (
    DrainHistory,
    OffsetTable,
    PartitionHistory,
    Point,
    Status,
    Totals,
    evaluate,
)


def _table(points: list[tuple[int, float]], capacity: int = 64) -> OffsetTable:
    table = OffsetTable(capacity)
    for offset, at in points:
        table.add(offset, at)
    return table


def test_empty_table_knows_nothing() -> None:
    assert OffsetTable().time_lag(5, 100.0) is None


def test_single_sample_gives_a_floor_not_a_guess() -> None:
    table = _table([(10, 100.0)])
    assert table.time_lag(4, 100.0) == (0.0, True)
    assert table.time_lag(4, 130.0) == (30.0, True)
    assert table.time_lag(10, 130.0) == (0.0, False)


def test_interpolates_between_the_bracketing_samples() -> None:
    table = _table([(0, 100.0), (10, 110.0), (30, 120.0)])
    # message 14 exists once the log end reaches 15: halfway between t=110 (10) and t=120 (30)
    seconds, lower = table.time_lag(14, 125.0)  # type: ignore[misc]
    assert not lower
    assert seconds == pytest.approx(125.0 - 112.5)
    # message 9 appeared exactly when the log end reached 10
    assert table.time_lag(9, 125.0) == pytest.approx((15.0, False))
    # a committed offset at or beyond the newest log end has no lag
    assert table.time_lag(30, 125.0) == (0.0, False)
    assert table.time_lag(31, 125.0) == (0.0, False)


def test_flat_run_keeps_first_and_latest_point_and_brackets_with_the_latest() -> None:
    table = _table([(5, 100.0), (5, 110.0), (5, 120.0), (5, 130.0), (15, 140.0)])
    assert table.offsets == [5, 5, 15]
    assert table.times == [100.0, 130.0, 140.0]
    # message 5 was produced after t=130 (the log end still said 5 then), not after t=100
    seconds, lower = table.time_lag(5, 150.0)  # type: ignore[misc]
    assert not lower
    assert seconds == pytest.approx(150.0 - 131.0)


def test_flat_run_at_the_start_keeps_the_table_small() -> None:
    table = _table([(7, float(t)) for t in range(1000)], capacity=8)
    assert table.offsets == [7, 7]
    assert table.times == [0.0, 999.0]


def test_overflow_thins_the_older_half_and_keeps_the_oldest_point() -> None:
    table = _table([(i * 10, float(i)) for i in range(9)], capacity=8)
    assert len(table) <= 8
    assert table.offsets[0] == 0 and table.times[0] == 0.0
    assert table.offsets[-1] == 80
    assert table.offsets == sorted(table.offsets)
    for _ in range(1000):  # stays bounded however long it runs
        table.add(table.offsets[-1] + 10, table.times[-1] + 1)
    assert len(table) <= 8
    assert table.times[0] == 0.0
    # still interpolates over the thinned (linear) history
    seconds, lower = table.time_lag(100, 2000.0)  # type: ignore[misc]
    assert not lower
    assert seconds == pytest.approx(2000.0 - 10.1, abs=1.0)


def test_log_going_backwards_resets_the_table() -> None:
    table = _table([(100, 1.0), (200, 2.0), (50, 3.0)])
    assert table.offsets == [50]
    assert table.times == [3.0]


def _window(*triples: tuple[float, int, int]) -> tuple[list[int], list[int]]:
    return [c for _, c, _ in triples], [lag for _, _, lag in triples]


def test_single_sample_is_ok() -> None:
    assert evaluate(*_window((0, 5, 100)), 3, has_members=False) is Status.OK


def test_committed_offset_stuck_with_lag_is_stop_without_members_stall_with() -> None:
    w = _window((0, 5, 10), (1, 5, 12), (2, 5, 12))
    assert evaluate(*w, 3, has_members=False) is Status.STOP
    assert evaluate(*w, 3, has_members=True) is Status.STALL
    # not before the window is full: until then the growing lag is only a warning
    assert evaluate(w[0][:2], w[1][:2], 3, has_members=False) is Status.WARN


def test_stuck_without_lag_is_ok() -> None:
    w = _window((0, 5, 0), (1, 5, 0), (2, 5, 0))
    assert evaluate(*w, 3, has_members=False) is Status.OK


def test_rewind_is_seen_anywhere_in_the_window() -> None:
    w = _window((0, 50, 0), (1, 20, 30), (2, 25, 25))
    assert evaluate(*w, 3, has_members=True) is Status.REWIND


def test_growing_lag_while_consuming_is_warn() -> None:
    w = _window((0, 10, 5), (1, 12, 7), (2, 14, 7), (3, 16, 9))
    assert evaluate(*w, 4, has_members=True) is Status.WARN


def test_flat_lag_or_shrinking_lag_is_ok() -> None:
    assert evaluate(*_window((0, 10, 5), (1, 12, 5)), 4, True) is Status.OK
    assert evaluate(*_window((0, 10, 9), (1, 12, 7), (2, 14, 8)), 4, True) is Status.OK


def test_lag_touching_zero_in_the_window_is_ok() -> None:
    w = _window((0, 10, 0), (1, 12, 3), (2, 14, 6))
    assert evaluate(*w, 3, has_members=True) is Status.OK


def test_history_tracks_when_the_offset_last_moved_and_slides() -> None:
    h = PartitionHistory(3)
    h.add(Point(0, 5, 10))
    h.add(Point(1, 5, 11))
    assert h.moved_at == 0
    h.add(Point(2, 7, 9))
    h.add(Point(3, 7, 9))
    assert h.moved_at == 2
    assert (len(h), h.committed, h.lag) == (3, 7, 9)
    assert h.status(has_members=True) is Status.OK
    h.add(Point(4, 7, 12))
    assert h.status(has_members=True) is Status.STALL


def test_drain_estimate() -> None:
    d = DrainHistory(5)
    assert d.estimate(0) == (0.0, True)
    d.add(Totals(0.0, 1, 100, 1000))
    assert d.estimate(900) is None  # one poll: no rate yet
    d.add(Totals(10.0, 1, 300, 1100))  # consumed 200, produced 100 in 10 s: net 10/s
    assert d.estimate(800) == pytest.approx((80.0, True))
    d.add(Totals(20.0, 1, 300, 1200))  # stopped: net over the window (200-200)/20 = 0
    assert d.estimate(900) == (None, False)


def test_drain_restarts_when_partitions_change() -> None:
    d = DrainHistory(5)
    d.add(Totals(0.0, 1, 0, 100))
    d.add(Totals(10.0, 2, 500, 700))
    assert d.estimate(200) is None


@pytest.mark.parametrize("size", [1, 2, 3, 10])
def test_history_status_is_evaluate_of_its_window(size: int) -> None:
    """``PartitionHistory`` keeps ages of facts, not the window: on random walks of
    committed offsets and lags (steps that rewind, stall, catch up and fall behind),
    its status is what ``evaluate`` says of the last ``size`` observations, after
    every observation."""
    rng = random.Random(size)
    for _ in range(200):
        h = PartitionHistory(size)
        window: deque[tuple[int, int]] = deque(maxlen=size)
        committed, lag = rng.randrange(5), rng.randrange(3)
        for at in range(3 * size + 5):
            committed = max(0, committed + rng.choice((-2, 0, 0, 0, 1, 3)))
            lag = max(0, lag + rng.choice((-3, -1, 0, 0, 1, 2)))
            h.add(Point(float(at), committed, lag))
            window.append((committed, lag))
            commits, lags = [c for c, _ in window], [lag for _, lag in window]
            assert len(h) == len(window)
            for members in (True, False):
                assert h.status(members) is evaluate(commits, lags, size, members)
