"""Order acknowledgement latency (``orders``): pairing by ClOrdID and direction, cancel
and replace answers, the ack timeout, the bounded pending map, backlogs and rotation.
The stack's venue answers every order at once, so these timings are written here."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from exporter.kinds.fix_store import metrics as M
from exporter.kinds.fix_store.probe import FixStoreState, collect
from exporter.probe import HistogramSample, ProbeResult

from .support import (
    PREFIX,
    fix,
    line,
    messages_log,
    store_target,
    values,
    write_store,
)


def _acks(r: ProbeResult) -> tuple[dict[float, int], float, int]:
    """The ack latency histogram: ({le: cumulative count}, sum, count)."""
    (h,) = [s for s in r.samples if isinstance(s, HistogramSample)]
    assert h.family is M.ORDER_ACK_LATENCY and h.labels == ("broker",)
    return dict(zip(h.family.buckets, h.cumulative_counts, strict=True)), h.sum, h.count


def _assert_acked(r: ProbeResult, count: int, total: float, tolerance: float) -> None:
    """The ack latency histogram holds ``count`` observations summing to ``total``."""
    _, got_total, got_count = _acks(r)
    assert got_count == count
    assert got_total == pytest.approx(total, abs=tolerance)


def _order_counts(r: ProbeResult) -> tuple[float, float]:
    """(unacknowledged_total, pending)."""
    v = values(r)
    return v[("orders_unacknowledged_total", ())], v[("orders_pending", ())]


def test_order_unanswered_past_ack_timeout_is_unacknowledged(tmp_path: Path) -> None:
    """A venue that never answers an order: the stack's acceptor fills every
    NewOrderSingle, so the silence is written here."""
    write_store(tmp_path)
    now = float(int(time.time()))
    messages_log(tmp_path).write_text(
        line(now - 100, fix("D", "ENGINE", 1, "11=OLD"))
        + line(now - 5, fix("D", "ENGINE", 2, "11=RECENT"))
    )
    target = store_target(tmp_path)  # ack_timeout 30s by default
    state = FixStoreState(target)
    r = collect(target, state, now)
    assert _order_counts(r) == (1, 1)
    assert _acks(r) == ({b: 0 for b in M.ORDER_ACK_BUCKETS}, 0.0, 0)
    r = collect(target, state, now + 26)  # RECENT is now 31 s old
    assert _order_counts(r) == (2, 0)
    with messages_log(tmp_path).open("a") as f:  # a late answer pairs with nothing
        f.write(line(now + 26, fix("8", "BROKER", 1, "11=RECENT", "150=0")))
    r = collect(target, state, now + 27)
    assert _order_counts(r) == (2, 0)
    assert _acks(r)[2] == 0


def test_orders_pair_by_clordid_when_interleaved(tmp_path: Path) -> None:
    """Several orders in flight answered out of order, plus a later fill, an answer
    for an unknown order, an answer in the wrong direction and a PossDup resend:
    exact timings a live engine would not reproduce, so the lines are written here."""
    write_store(tmp_path)
    t = float(int(time.time()) - 60)
    msgs = [
        (t, fix("D", "ENGINE", 1, "11=ORD-A")),
        (t + 0.001, fix("D", "ENGINE", 2, "11=ORD-B")),
        (t + 0.0015, fix("D", "ENGINE", 3, "43=Y", "11=ORD-A")),  # resend: keeps t
        (
            t + 0.002,
            fix("8", "ENGINE", 4, "11=ORD-A", "150=0"),
        ),  # same direction: no answer
        (t + 0.003, fix("8", "BROKER", 1, "11=ORD-B", "150=0")),  # B: 2 ms
        (t + 0.004, fix("8", "BROKER", 2, "11=ORD-Z", "150=0")),  # never sent
        (t + 0.010, fix("8", "BROKER", 3, "11=ORD-A", "150=0")),  # A: 10 ms
        (t + 0.200, fix("8", "BROKER", 4, "11=ORD-A", "150=F")),  # the fill: not a 2nd ack
        (
            t + 0.300,
            fix("D", "ENGINE", 5, "43=Y", "11=ORD-C"),
        ),  # PossDup only: not an order
    ]
    messages_log(tmp_path).write_text("".join(line(ts, m) for ts, m in msgs))
    target = store_target(tmp_path)
    r = collect(target, FixStoreState(target), t + 1)
    buckets, total, count = _acks(r)
    assert count == 2
    assert total == pytest.approx(0.012, abs=1e-6)
    assert buckets[0.001] == 0 and buckets[0.0025] == 1 and buckets[0.01] == 2
    assert buckets[2.5] == 2
    assert _order_counts(r) == (0, 0)
    labels = {lbl for s in r.samples for lbl in s.labels}
    assert not any("ORD" in lbl for lbl in labels)  # ClOrdIDs never become label values


def test_cancel_and_replace_are_answered_by_cancel_reject(tmp_path: Path) -> None:
    """OrderCancelReject (35=9) answers G and F, in either direction; it does not
    answer a NewOrderSingle. The stack's venue answers only NewOrderSingle, so
    these lines are written here."""
    write_store(tmp_path)
    t = float(int(time.time()) - 60)
    msgs = [
        (t, fix("G", "ENGINE", 1, "11=R1", "41=O1")),
        (t + 0.004, fix("9", "BROKER", 1, "11=R1", "41=O1", "434=2")),  # 4 ms
        (t + 0.1, fix("F", "ENGINE", 2, "11=C1", "41=O1")),
        (t + 0.1004, fix("9", "BROKER", 2, "11=C1", "41=O1", "434=1")),  # 0.4 ms
        (t + 0.2, fix("D", "ENGINE", 3, "11=N1")),
        (t + 0.201, fix("9", "BROKER", 3, "11=N1", "434=1")),  # not an answer to a D
        (t + 0.29, fix("8", "BROKER", 4, "11=N1", "150=8")),  # 90 ms, a reject report
        (t + 0.4, fix("F", "BROKER", 5, "11=VC1", "41=VO1")),  # venue side: F inbound ...
        (
            t + 0.4002,
            fix("9", "ENGINE", 4, "11=VC1", "41=VO1", "434=1"),
        ),  # ... 9 out: 0.2 ms
    ]
    messages_log(tmp_path).write_text("".join(line(ts, m) for ts, m in msgs))
    target = store_target(tmp_path)
    r = collect(target, FixStoreState(target), t + 1)
    buckets, total, count = _acks(r)
    assert count == 4
    assert total == pytest.approx(0.004 + 0.0004 + 0.09 + 0.0002, abs=1e-5)
    assert buckets[0.00025] == 1 and buckets[0.0005] == 2 and buckets[0.005] == 3
    assert buckets[0.05] == 3 and buckets[0.1] == 4
    assert _order_counts(r) == (0, 0)


def test_pending_orders_are_bounded_dropping_the_oldest(tmp_path: Path) -> None:
    """More orders waiting than max_pending_orders (a venue that stopped answering
    a busy session), written here because the stack's venue answers at once."""
    write_store(tmp_path)
    t = float(int(time.time()) - 10)
    orders = "".join(line(t + i * 0.1, fix("D", "ENGINE", i + 1, f"11=ORD{i}")) for i in range(5))
    messages_log(tmp_path).write_text(orders)
    target = store_target(tmp_path, max_pending_orders=3)
    state = FixStoreState(target)
    r = collect(target, state, t + 1)
    assert _order_counts(r) == (2, 3)  # ORD0 and ORD1 dropped
    with messages_log(tmp_path).open("a") as f:
        f.write(line(t + 1, fix("8", "BROKER", 1, "11=ORD0", "150=0")))  # dropped: ignored
        f.write(line(t + 1, fix("8", "BROKER", 2, "11=ORD4", "150=0")))
    r = collect(target, state, t + 1)
    assert _order_counts(r) == (2, 2)
    _assert_acked(r, 1, 0.6, 1e-5)


def test_pending_order_waits_through_a_read_backlog_and_a_rotation(tmp_path: Path) -> None:
    """An old order whose answer is still in the unread backlog ages by log time,
    not the wall clock; one answered in the next file after a rotation pairs.
    logrotate and the read cap cannot be driven on a live engine."""
    write_store(tmp_path)
    log = messages_log(tmp_path)
    t = float(int(time.time()) - 1000)  # far older than ack_timeout by the wall clock
    filler = "".join(line(t + 0.001, fix("0", "BROKER", i)) for i in range(2, 60))
    log.write_text(
        line(t, fix("D", "ENGINE", 1, "11=SLOW"))
        + filler
        + line(t + 0.002, fix("8", "BROKER", 60, "11=SLOW", "150=0"))
        + line(t + 0.003, fix("D", "ENGINE", 2, "11=ROT"))
    )
    assert log.stat().st_size > 4096
    target = store_target(tmp_path, max_read_bytes=4096)
    state = FixStoreState(target)
    r = collect(target, state, t + 1000)
    assert values(r)[("log_backlog_bytes", ("messages",))] > 0
    assert _order_counts(r) == (0, 1)  # SLOW waits: its answer is in the backlog
    r = collect(target, state, t + 1.0)
    _assert_acked(r, 1, 0.002, 1e-6)
    assert _order_counts(r) == (0, 1)  # ROT waits
    os.rename(log, tmp_path / f"{PREFIX}.messages.backup.log")
    log.write_text(line(t + 0.5, fix("8", "BROKER", 61, "11=ROT", "150=0")))
    r = collect(target, state, t + 1.0)
    _assert_acked(r, 2, 0.002 + 0.497, 1e-5)
    assert _order_counts(r) == (0, 0)
    assert values(r)[("log_reopens_total", ("messages",))] == 1
