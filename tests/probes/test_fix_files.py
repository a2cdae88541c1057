"""Passive FIX reader on prepared files: old .seqnums, truncation, rotation, integrity.

These situations cannot be produced on demand by a running engine (an old
QuickFIX version, logrotate, a corrupted store), so the files are written here
in the engine's exact line format.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from pathlib import Path

import pytest

from exporter.config import ConfigError, parse
from exporter.probe import ProbeError, ProbeResult, Sample
from exporter.probes.fix_common import Schedule
from exporter.probes.fix_files import Tail, read_seqnums
from exporter.probes.fix_store import KIND, FixStoreState, FixStoreTarget, collect
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
    """A FIFO with no writer stands in for a stuck filesystem: opening it blocks."""
    _store(tmp_path)
    fifo = tmp_path / f"{PREFIX}.messages.current.log"
    os.mkfifo(fifo)
    target = _target(tmp_path)
    state = FixStoreState(target)
    try:
        first = await run_probe(KIND, target, state, 0.3)
        second = await run_probe(KIND, target, state, 0.3)
    finally:
        writer = os.open(fifo, os.O_WRONLY)  # the stuck open returns (also if a run failed)
    assert first.reason == "timeout"  # the deadline, while the read hangs in its thread
    assert second.reason == "timeout" and second.duration < 0.1
    assert "has not returned" in str(second.error)
    try:
        os.write(writer, _order_lines(time.time(), 1).encode())
        os.close(writer)
        for _ in range(50):
            outcome = await run_probe(KIND, target, state, 0.3)
            if outcome.ok:
                break
            await asyncio.sleep(0.05)
        assert outcome.ok, outcome.error
    finally:
        await asyncio.wait_for(state.aclose(), 5)
