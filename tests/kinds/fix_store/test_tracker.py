"""What the log lines say (``tracker``): admin counters, logon results, and the lines
that are not log lines at all. The lines are written in the engine's exact format."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from exporter.kinds.fix_store.orders import OrderAcks
from exporter.kinds.fix_store.probe import FixStoreState, collect
from exporter.kinds.fix_store.tracker import SessionTracker

from .support import (
    PREFIX,
    fix,
    line,
    messages_log,
    store_target,
    values,
    write_store,
)


def test_admin_counters_from_messages_and_events(tmp_path: Path) -> None:
    write_store(tmp_path)
    now = time.time()
    msgs = [
        fix("A", "ENGINE", 1, "98=0", "108=30"),
        fix("A", "BROKER", 1, "98=0", "108=30"),
        fix("2", "BROKER", 2, "7=1", "16=0"),
        fix("4", "ENGINE", 2, "123=Y", "36=5"),
        fix("4", "BROKER", 3, "36=9"),
        fix("3", "BROKER", 4, "45=3"),
        fix("j", "ENGINE", 5, "45=4"),
        fix("1", "ENGINE", 6, "112=T1"),
        fix("0", "BROKER", 5, "112=T1"),
        fix("AE", "BROKER", 6),
    ]
    messages_log(tmp_path).write_text(
        "".join(line(now - 60 + i * 0.25, m) for i, m in enumerate(msgs))
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
        "".join(line(now - 50 + i, e) for i, e in enumerate(events))
    )
    target = store_target(tmp_path)
    v = values(collect(target, FixStoreState(target), now))
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


def _tracker() -> SessionTracker:
    return SessionTracker("ENGINE", OrderAcks(30.0, 10, (1.0,)))


def test_unparseable_message_lines_are_counted_and_skipped() -> None:
    t = _tracker()
    now = time.time()
    good = line(now, fix("0", "BROKER", 2)).rstrip("\n")
    garbage = [
        "not a log line at all",
        "20261323-25:00:00.000000000 : " + fix("0", "BROKER", 3),  # no such time
        line(now, "8=FIX.4.2\x019=5\x0149=BROKER\x01").rstrip("\n"),  # no MsgType (35)
        good.replace(" : ", " "),  # no separator
    ]
    for text in [good, *garbage]:
        t.message(text.encode())
    assert t.unparsed == {"messages": 4, "event": 0}
    assert sum(t.messages.values()) == 1
    assert t.last_in == pytest.approx(now, abs=1e-3)


def test_unparseable_event_lines_are_counted_and_their_text_still_read() -> None:
    t = _tracker()
    t.event(line(time.time(), "Created session").rstrip("\n").encode())
    t.event(b"Disconnecting")  # no time and no separator: nothing to read
    t.event(b"garbage : Disconnecting")  # no time, but the engine's text
    assert t.unparsed == {"messages": 0, "event": 2}
    assert t.disconnects == 1


def test_a_log_of_garbage_gives_the_usual_series(tmp_path: Path) -> None:
    write_store(tmp_path)
    messages_log(tmp_path).write_bytes(b"\x00\xff garbage\nmore : garbage\n")
    target = store_target(tmp_path)
    state = FixStoreState(target)
    v = values(collect(target, state, time.time()))
    assert state.tracker.unparsed["messages"] == 2
    assert v[("log_unparsed_lines_total", ("messages",))] == 2
    assert v[("log_unparsed_lines_total", ("event",))] == 0
    assert sum(n for (name, _), n in v.items() if name == "messages_total") == 0
    assert ("last_inbound_timestamp_seconds", ()) not in v
