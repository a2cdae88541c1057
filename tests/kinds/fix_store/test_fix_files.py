"""Passive FIX reader on prepared files: old .seqnums, truncation, rotation, integrity.

These situations cannot be produced on demand by a running engine (an old
QuickFIX version, logrotate, a corrupted store), so the files are written here
in the engine's exact line format.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import time
from pathlib import Path

import pytest

from exporter.config import ConfigError, parse
from exporter.kinds.fix.common import Schedule
from exporter.kinds.fix_store import metrics as M
from exporter.kinds.fix_store.files import Tail, read_seqnums
from exporter.kinds.fix_store.probe import KIND, FixStoreState, FixStoreTarget, collect
from exporter.probe import HistogramSample, ProbeError, ProbeResult, Sample
from exporter.scheduler import run_probe

PREFIX = "FIX.4.2-ENGINE-BROKER"
SOH = "\x01"


def _fix(msg_type: str, sender: str, seq: int, *extra: str) -> str:
    target = "BROKER" if sender == "ENGINE" else "ENGINE"
    fields = [f"35={msg_type}", f"49={sender}", f"56={target}", f"34={seq}", *extra]
    return SOH.join(["8=FIX.4.2", "9=0", *fields, "10=000"]) + SOH


def _line(ts: float, text: str) -> str:
    t = dt.datetime.fromtimestamp(ts, dt.UTC)
    return t.strftime("%Y%m%d-%H:%M:%S.") + f"{t.microsecond * 1000:09d} : {text}\n"


def _store(tmp_path: Path, seqnums: str = "00000000000000000005 : 00000000000000000007") -> None:
    (tmp_path / f"{PREFIX}.seqnums").write_text(seqnums)
    (tmp_path / f"{PREFIX}.session").write_text("20261123-02:36:37")


def _target(tmp_path: Path, **kw: object) -> FixStoreTarget:
    return FixStoreTarget.model_validate(
        {
            "name": "broker",
            "store_path": tmp_path,
            "begin_string": "FIX.4.2",
            "sender_comp_id": "ENGINE",
            "target_comp_id": "BROKER",
            "interval": 5,
            "timeout": 1,
            **kw,
        }
    )


def _values(r: ProbeResult) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (s.family.name.removeprefix("tradeops_fix_session_"), s.labels[1:]): s.value
        for s in r.samples
        if isinstance(s, Sample)
    }


def _messages_log(tmp_path: Path) -> Path:
    return tmp_path / f"{PREFIX}.messages.current.log"


def _order_lines(start: float, n: int, first_seq: int = 1) -> str:
    return "".join(
        _line(start + i, _fix("D", "ENGINE", first_seq + i, f"11=ORD{i}")) for i in range(n)
    )


def test_old_ten_digit_seqnums_format(tmp_path: Path) -> None:
    _store(tmp_path, "0000000012 : 0000000034")
    target = _target(tmp_path)
    v = _values(collect(target, FixStoreState(target), time.time()))
    assert v[("next_sender_seqnum", ())] == 12
    assert v[("next_target_seqnum", ())] == 34
    assert v[("store_creation_timestamp_seconds", ())] == 1795401397  # 2026-11-23 02:36:37Z


@pytest.mark.parametrize(
    "text", ["00000000000000000005 : 00000000000000000007", "5:7", "0000000005 : 0000000007\n"]
)
def test_seqnums_layouts(tmp_path: Path, text: str) -> None:
    path = tmp_path / "s.seqnums"
    path.write_text(text)
    assert read_seqnums(path) == (5, 7)


def test_torn_seqnums_is_an_error_after_retries(tmp_path: Path) -> None:
    _store(tmp_path, "00000000000000000005 : ")
    target = _target(tmp_path)
    with pytest.raises(ProbeError) as err:
        collect(target, FixStoreState(target), time.time())
    assert err.value.reason == "protocol"


def test_counts_only_new_lines_and_survives_truncation(tmp_path: Path) -> None:
    _store(tmp_path)
    log = _messages_log(tmp_path)
    now = time.time()
    log.write_text(_order_lines(now - 100, 5))
    target = _target(tmp_path)
    state = FixStoreState(target)
    v = _values(collect(target, state, now))
    assert v[("messages_total", ("outbound", "new_order_single"))] == 5
    v = _values(collect(target, state, now))  # nothing new: counters unchanged
    assert v[("messages_total", ("outbound", "new_order_single"))] == 5
    with log.open("a") as f:  # a torn write: half a line now, the rest later
        whole = _line(now - 50, _fix("8", "BROKER", 9, "150=F"))
        f.write(whole[:30])
        f.flush()
        v = _values(collect(target, state, now))
        assert v[("messages_total", ("inbound", "execution_report"))] == 0
        f.write(whole[30:])
    v = _values(collect(target, state, now))
    assert v[("messages_total", ("inbound", "execution_report"))] == 1
    assert v[("last_inbound_timestamp_seconds", ())] == pytest.approx(now - 50, abs=1e-3)
    log.write_text(_order_lines(now - 10, 2))  # truncated in place (copytruncate), then 2 lines
    v = _values(collect(target, state, now))
    assert v[("messages_total", ("outbound", "new_order_single"))] == 7
    assert v[("log_reopens_total", ("messages",))] == 1
    assert v[("log_backlog_bytes", ("messages",))] == 0


def test_rotation_drains_the_old_file_then_follows_the_new(tmp_path: Path) -> None:
    _store(tmp_path)
    log = _messages_log(tmp_path)
    now = time.time()
    log.write_text(_order_lines(now - 100, 3))
    target = _target(tmp_path)
    state = FixStoreState(target)
    collect(target, state, now)
    with log.open("a") as f:
        f.write(_order_lines(now - 90, 2, first_seq=4))  # written just before rotation
    os.rename(log, tmp_path / f"{PREFIX}.messages.backup.log")
    log.write_text(_order_lines(now - 80, 4, first_seq=6))
    v = _values(collect(target, state, now))
    assert v[("messages_total", ("outbound", "new_order_single"))] == 3 + 2 + 4
    assert v[("log_reopens_total", ("messages",))] == 1


def test_first_read_starts_backfill_bytes_before_the_end(tmp_path: Path) -> None:
    _store(tmp_path)
    log = _messages_log(tmp_path)
    now = time.time()
    log.write_text(_order_lines(now - 1000, 500))
    line_len = len(log.read_bytes().splitlines(keepends=True)[-1])  # the last 10 are equal
    target = _target(tmp_path, backfill_bytes=10 * line_len + 5)
    state = FixStoreState(target)
    v = _values(collect(target, state, now))
    assert v[("messages_total", ("outbound", "new_order_single"))] == 10  # partial line skipped
    assert v[("log_bytes_read_total", ("messages",))] == 10 * line_len + 5


def test_read_cap_leaves_a_backlog_for_the_next_cycle(tmp_path: Path) -> None:
    _store(tmp_path)
    log = _messages_log(tmp_path)
    now = time.time()
    target = _target(tmp_path, max_read_bytes=4096)
    state = FixStoreState(target)
    collect(target, state, now)  # opened while empty: everything after is new
    log.write_text(_order_lines(now - 1000, 200))
    size = log.stat().st_size
    v = _values(collect(target, state, now))
    assert v[("log_backlog_bytes", ("messages",))] == size - 4096
    while v[("log_backlog_bytes", ("messages",))] > 0:
        v = _values(collect(target, state, now))
    assert v[("messages_total", ("outbound", "new_order_single"))] == 200


def test_seqnum_going_backwards_without_reset_breaks_integrity(tmp_path: Path) -> None:
    _store(tmp_path, "00000000000000000050 : 00000000000000000060")
    target = _target(tmp_path)
    state = FixStoreState(target)
    assert _values(collect(target, state, time.time()))[("store_integrity_ok", ())] == 1
    _store(tmp_path, "00000000000000000040 : 00000000000000000061")
    v = _values(collect(target, state, time.time()))
    assert v[("store_integrity_ok", ())] == 0
    assert v[("seqnum_regressions_total", ())] == 1
    (tmp_path / f"{PREFIX}.seqnums").write_text("1 : 1")
    (tmp_path / f"{PREFIX}.session").write_text("20261124-00:00:00")  # a real reset
    v = _values(collect(target, state, time.time()))
    assert v[("store_integrity_ok", ())] == 1
    assert v[("store_creation_timestamp_seconds", ())] == 1795478400


def test_admin_counters_from_messages_and_events(tmp_path: Path) -> None:
    _store(tmp_path)
    now = time.time()
    msgs = [
        _fix("A", "ENGINE", 1, "98=0", "108=30"),
        _fix("A", "BROKER", 1, "98=0", "108=30"),
        _fix("2", "BROKER", 2, "7=1", "16=0"),
        _fix("4", "ENGINE", 2, "123=Y", "36=5"),
        _fix("4", "BROKER", 3, "36=9"),
        _fix("3", "BROKER", 4, "45=3"),
        _fix("j", "ENGINE", 5, "45=4"),
        _fix("1", "ENGINE", 6, "112=T1"),
        _fix("0", "BROKER", 5, "112=T1"),
        _fix("AE", "BROKER", 6),
    ]
    _messages_log(tmp_path).write_text(
        "".join(_line(now - 60 + i * 0.25, m) for i, m in enumerate(msgs))
    )
    events = [
        "Initiated logon request",
        "Received logon response",
        "Sent ResendRequest FROM: 1 TO: 0",
        "Timed out waiting for heartbeat",
        "Disconnecting",
        "Initiated logon request",
        "Disconnecting",
    ]
    (tmp_path / f"{PREFIX}.event.current.log").write_text(
        "".join(_line(now - 50 + i, e) for i, e in enumerate(events))
    )
    target = _target(tmp_path)
    v = _values(collect(target, FixStoreState(target), now))
    assert v[("heartbeat_interval_seconds", ())] == 30
    assert v[("resend_requests_total", ("inbound",))] == 1
    assert v[("sequence_resets_total", ("outbound", "gap_fill"))] == 1
    assert v[("sequence_resets_total", ("inbound", "reset"))] == 1
    assert v[("rejects_total", ("inbound", "session"))] == 1
    assert v[("rejects_total", ("outbound", "business"))] == 1
    assert v[("messages_total", ("inbound", "other"))] == 1
    assert v[("test_request_roundtrip_seconds", ())] == pytest.approx(0.25, abs=1e-3)
    assert v[("logons_total", ("success",))] == 1
    assert v[("logons_total", ("failure",))] == 1
    assert v[("disconnects_total", ())] == 2
    assert v[("heartbeat_timeouts_total", ())] == 1
    assert v[("logged_on", ())] == 0
    assert v[("heartbeat_overdue", ())] == 0  # logged out (known): no heartbeat is owed
    assert v[("last_logon_timestamp_seconds", ())] == pytest.approx(now - 49, abs=1e-3)


@pytest.mark.parametrize(
    "events",
    [None, "", "Created session\n"],
    ids=["no-event-log", "empty-event-log", "no-logon-or-logout"],
)
def test_unknown_logged_on_state_leaves_overdue_absent_not_zero(
    tmp_path: Path, events: str | None
) -> None:
    """Exporter restarted after the logon was rotated away, log reset, engine never up:
    the messages log still holds an old Logon and silence, inside the schedule."""
    _store(tmp_path)
    now = time.time()
    msgs = [_fix("A", "BROKER", 1, "98=0", "108=30"), _fix("0", "BROKER", 2)]
    _messages_log(tmp_path).write_text("".join(_line(now - 600 + i, m) for i, m in enumerate(msgs)))
    event_log = tmp_path / f"{PREFIX}.event.current.log"
    if events is not None:
        event_log.write_text("".join(_line(now - 700, e) for e in events.splitlines()))
    target = _target(tmp_path, schedule={"start": "00:00", "end": "00:00"})  # all day
    state = FixStoreState(target)
    v = _values(collect(target, state, now))
    assert v[("in_schedule", ())] == 1
    assert v[("heartbeat_interval_seconds", ())] == 30
    assert v[("last_inbound_timestamp_seconds", ())] == pytest.approx(now - 599, abs=1e-3)
    assert ("logged_on", ()) not in v
    assert ("heartbeat_overdue", ()) not in v  # unknown, not a healthy 0
    assert ("last_logon_timestamp_seconds", ()) not in v

    # once the log says logged on, the silence shows; after a logout it is 0 again
    with event_log.open("a") as f:
        f.write(_line(now - 650, "Received logon response"))
    v = _values(collect(target, state, now))
    assert v[("logged_on", ())] == 1
    assert v[("heartbeat_overdue", ())] == 1
    assert v[("last_logon_timestamp_seconds", ())] == pytest.approx(now - 650, abs=1e-3)
    with event_log.open("a") as f:
        f.write(_line(now - 500, "Initiated logout request"))
    v = _values(collect(target, state, now))
    assert v[("logged_on", ())] == 0
    assert v[("heartbeat_overdue", ())] == 0
    assert v[("last_logon_timestamp_seconds", ())] == pytest.approx(now - 650, abs=1e-3)


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        ("2026-11-23T08:59:59", False),  # a Monday, before the open
        ("2026-11-23T09:00:00", True),
        ("2026-11-23T17:29:59", True),
        ("2026-11-23T17:30:00", False),
        ("2026-11-28T10:00:00", False),  # Saturday
    ],
)
def test_schedule_in_its_time_zone(when: str, inside: bool) -> None:
    sched = Schedule.model_validate(
        {
            "timezone": "America/New_York",
            "start": "09:00",
            "end": "17:30",
            "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        }
    )
    ts = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC).timestamp() + 5 * 3600  # EST
    assert sched.contains(ts) is inside


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        ("2026-11-22T22:00:00", True),  # Sunday 17:00 in New York: the FX week opens
        ("2026-11-22T21:59:00", False),
        ("2026-11-28T02:00:00", True),  # Friday 21:00 local, opened Friday
        ("2026-11-28T22:30:00", False),  # Saturday 17:30 local
    ],
)
def test_schedule_across_midnight(when: str, inside: bool) -> None:
    sched = Schedule.model_validate(
        {
            "timezone": "America/New_York",
            "start": "17:00",
            "end": "16:59",
            "weekdays": ["sun", "mon", "tue", "wed", "thu", "fri"],
        }
    )
    ts = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC).timestamp()
    assert sched.contains(ts) is inside


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
    v = _values(r)
    return v[("orders_unacknowledged_total", ())], v[("orders_pending", ())]


def test_order_unanswered_past_ack_timeout_is_unacknowledged(tmp_path: Path) -> None:
    """A venue that never answers an order: the stack's acceptor fills every
    NewOrderSingle, so the silence is written here."""
    _store(tmp_path)
    now = float(int(time.time()))
    _messages_log(tmp_path).write_text(
        _line(now - 100, _fix("D", "ENGINE", 1, "11=OLD"))
        + _line(now - 5, _fix("D", "ENGINE", 2, "11=RECENT"))
    )
    target = _target(tmp_path)  # ack_timeout 30s by default
    state = FixStoreState(target)
    r = collect(target, state, now)
    assert _order_counts(r) == (1, 1)
    assert _acks(r) == ({b: 0 for b in M.ORDER_ACK_BUCKETS}, 0.0, 0)
    r = collect(target, state, now + 26)  # RECENT is now 31 s old
    assert _order_counts(r) == (2, 0)
    with _messages_log(tmp_path).open("a") as f:  # a late answer pairs with nothing
        f.write(_line(now + 26, _fix("8", "BROKER", 1, "11=RECENT", "150=0")))
    r = collect(target, state, now + 27)
    assert _order_counts(r) == (2, 0)
    assert _acks(r)[2] == 0


def test_orders_pair_by_clordid_when_interleaved(tmp_path: Path) -> None:
    """Several orders in flight answered out of order, plus a later fill, an answer
    for an unknown order, an answer in the wrong direction and a PossDup resend:
    exact timings a live engine would not reproduce, so the lines are written here."""
    _store(tmp_path)
    t = float(int(time.time()) - 60)
    msgs = [
        (t, _fix("D", "ENGINE", 1, "11=ORD-A")),
        (t + 0.001, _fix("D", "ENGINE", 2, "11=ORD-B")),
        (t + 0.0015, _fix("D", "ENGINE", 3, "43=Y", "11=ORD-A")),  # resend: keeps t
        (t + 0.002, _fix("8", "ENGINE", 4, "11=ORD-A", "150=0")),  # same direction: no answer
        (t + 0.003, _fix("8", "BROKER", 1, "11=ORD-B", "150=0")),  # B: 2 ms
        (t + 0.004, _fix("8", "BROKER", 2, "11=ORD-Z", "150=0")),  # never sent
        (t + 0.010, _fix("8", "BROKER", 3, "11=ORD-A", "150=0")),  # A: 10 ms
        (t + 0.200, _fix("8", "BROKER", 4, "11=ORD-A", "150=F")),  # the fill: not a 2nd ack
        (t + 0.300, _fix("D", "ENGINE", 5, "43=Y", "11=ORD-C")),  # PossDup only: not an order
    ]
    _messages_log(tmp_path).write_text("".join(_line(ts, m) for ts, m in msgs))
    target = _target(tmp_path)
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
    _store(tmp_path)
    t = float(int(time.time()) - 60)
    msgs = [
        (t, _fix("G", "ENGINE", 1, "11=R1", "41=O1")),
        (t + 0.004, _fix("9", "BROKER", 1, "11=R1", "41=O1", "434=2")),  # 4 ms
        (t + 0.1, _fix("F", "ENGINE", 2, "11=C1", "41=O1")),
        (t + 0.1004, _fix("9", "BROKER", 2, "11=C1", "41=O1", "434=1")),  # 0.4 ms
        (t + 0.2, _fix("D", "ENGINE", 3, "11=N1")),
        (t + 0.201, _fix("9", "BROKER", 3, "11=N1", "434=1")),  # not an answer to a D
        (t + 0.29, _fix("8", "BROKER", 4, "11=N1", "150=8")),  # 90 ms, a reject report
        (t + 0.4, _fix("F", "BROKER", 5, "11=VC1", "41=VO1")),  # venue side: F inbound ...
        (t + 0.4002, _fix("9", "ENGINE", 4, "11=VC1", "41=VO1", "434=1")),  # ... 9 out: 0.2 ms
    ]
    _messages_log(tmp_path).write_text("".join(_line(ts, m) for ts, m in msgs))
    target = _target(tmp_path)
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
    _store(tmp_path)
    t = float(int(time.time()) - 10)
    orders = "".join(_line(t + i * 0.1, _fix("D", "ENGINE", i + 1, f"11=ORD{i}")) for i in range(5))
    _messages_log(tmp_path).write_text(orders)
    target = _target(tmp_path, max_pending_orders=3)
    state = FixStoreState(target)
    r = collect(target, state, t + 1)
    assert _order_counts(r) == (2, 3)  # ORD0 and ORD1 dropped
    with _messages_log(tmp_path).open("a") as f:
        f.write(_line(t + 1, _fix("8", "BROKER", 1, "11=ORD0", "150=0")))  # dropped: ignored
        f.write(_line(t + 1, _fix("8", "BROKER", 2, "11=ORD4", "150=0")))
    r = collect(target, state, t + 1)
    assert _order_counts(r) == (2, 2)
    _assert_acked(r, 1, 0.6, 1e-5)


def test_pending_order_waits_through_a_read_backlog_and_a_rotation(tmp_path: Path) -> None:
    """An old order whose answer is still in the unread backlog ages by log time,
    not the wall clock; one answered in the next file after a rotation pairs.
    logrotate and the read cap cannot be driven on a live engine."""
    _store(tmp_path)
    log = _messages_log(tmp_path)
    t = float(int(time.time()) - 1000)  # far older than ack_timeout by the wall clock
    filler = "".join(_line(t + 0.001, _fix("0", "BROKER", i)) for i in range(2, 60))
    log.write_text(
        _line(t, _fix("D", "ENGINE", 1, "11=SLOW"))
        + filler
        + _line(t + 0.002, _fix("8", "BROKER", 60, "11=SLOW", "150=0"))
        + _line(t + 0.003, _fix("D", "ENGINE", 2, "11=ROT"))
    )
    assert log.stat().st_size > 4096
    target = _target(tmp_path, max_read_bytes=4096)
    state = FixStoreState(target)
    r = collect(target, state, t + 1000)
    assert _values(r)[("log_backlog_bytes", ("messages",))] > 0
    assert _order_counts(r) == (0, 1)  # SLOW waits: its answer is in the backlog
    r = collect(target, state, t + 1.0)
    _assert_acked(r, 1, 0.002, 1e-6)
    assert _order_counts(r) == (0, 1)  # ROT waits
    os.rename(log, tmp_path / f"{PREFIX}.messages.backup.log")
    log.write_text(_line(t + 0.5, _fix("8", "BROKER", 61, "11=ROT", "150=0")))
    r = collect(target, state, t + 1.0)
    _assert_acked(r, 2, 0.002 + 0.497, 1e-5)
    assert _order_counts(r) == (0, 0)
    assert _values(r)[("log_reopens_total", ("messages",))] == 1


def test_tail_of_a_missing_file_reads_nothing(tmp_path: Path) -> None:
    tail = Tail(tmp_path / "absent.log", backfill=0)
    assert tail.read_lines(1024) == []
    assert tail.backlog == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "sender_comp_id: BROKER",
            "cfg.yml: fix_store[0]: sender_comp_id and target_comp_id must differ",
        ),
        (
            "sender_comp_id: ENGINE\n    max_read_bytes: 10",
            "cfg.yml: fix_store[0].max_read_bytes: Input should be greater than or equal to 4096",
        ),
        (
            "sender_comp_id: ENGINE\n    ack_timeout: 0s",
            "cfg.yml: fix_store[0].ack_timeout: must be greater than zero",
        ),
        (
            "sender_comp_id: ENGINE\n    ack_timeout: 2d",
            "cfg.yml: fix_store[0].ack_timeout: expected a duration such as 15s or 500ms",
        ),
        (
            "sender_comp_id: ENGINE\n    ack_timeout: 25h",
            "cfg.yml: fix_store[0].ack_timeout: Input should be less than or equal to 86400",
        ),
        (
            "sender_comp_id: ENGINE\n    max_pending_orders: 0",
            "cfg.yml: fix_store[0].max_pending_orders: Input should be greater than or equal to 1",
        ),
        (
            "sender_comp_id: ENGINE\n    schedule: {weekdays: [funday]}",
            "cfg.yml: fix_store[0].schedule.weekdays[0]: Input should be 'mon', 'tue', 'wed', "
            "'thu', 'fri', 'sat' or 'sun'",
        ),
        (
            "sender_comp_id: ENGINE\n    schedule: {start: '25:00'}",
            "cfg.yml: fix_store[0].schedule.start: Input should be in a valid time format, "
            "hour value is outside expected range of 0-23",
        ),
    ],
)
def test_config_errors(body: str, message: str) -> None:
    text = f"""
fix_store:
  - name: broker
    store_path: /var/lib/quickfix/store
    target_comp_id: BROKER
    {body}
"""
    with pytest.raises(ConfigError) as err:
        parse(text, "cfg.yml")
    assert err.value.lines() == [message]


async def test_a_hung_read_fails_later_runs_at_once_until_it_returns(tmp_path: Path) -> None:
    """A read stuck in the kernel (a hung mount) cannot be cancelled. FIFOs are refused
    unopened (test_fix_store_faults.py), so a worker call blocked on an event stands in."""
    _store(tmp_path)
    target = _target(tmp_path)
    state = FixStoreState(target)
    release = threading.Event()
    with pytest.raises(TimeoutError):  # the run's deadline, while the read hangs
        await asyncio.wait_for(state.io.call(release.wait, 30), 0.3)
    try:
        second = await run_probe(KIND, target, state, 0.3)
    finally:
        release.set()
    assert second.reason == "timeout" and second.duration < 0.1
    assert "has not returned" in str(second.error)
    try:
        for _ in range(50):
            outcome = await run_probe(KIND, target, state, 0.3)
            if outcome.ok:
                break
            await asyncio.sleep(0.05)
        assert outcome.ok, outcome.error
    finally:
        await asyncio.wait_for(state.aclose(), 5)
