"""The series of a cycle (``series``): a logged-on state the logs do not show leaves
``heartbeat_overdue`` absent, never a healthy 0."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from exporter.kinds.fix_store.probe import FixStoreState, collect

from .support import (
    PREFIX,
    fix,
    line,
    messages_log,
    store_target,
    values,
    write_store,
)


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
    write_store(tmp_path)
    now = time.time()
    msgs = [fix("A", "BROKER", 1, "98=0", "108=30"), fix("0", "BROKER", 2)]
    messages_log(tmp_path).write_text("".join(line(now - 600 + i, m) for i, m in enumerate(msgs)))
    event_log = tmp_path / f"{PREFIX}.event.current.log"
    if events is not None:
        event_log.write_text("".join(line(now - 700, e) for e in events.splitlines()))
    target = store_target(tmp_path, schedule={"start": "00:00", "end": "00:00"})  # all day
    state = FixStoreState(target)
    v = values(collect(target, state, now))
    assert v[("in_schedule", ())] == 1
    assert v[("heartbeat_interval_seconds", ())] == 30
    assert v[("last_inbound_timestamp_seconds", ())] == pytest.approx(now - 599, abs=1e-3)
    assert ("logged_on", ()) not in v
    assert ("heartbeat_overdue", ()) not in v  # unknown, not a healthy 0
    assert ("last_logon_timestamp_seconds", ()) not in v

    # once the log says logged on, the silence shows; after a logout it is 0 again
    with event_log.open("a") as f:
        f.write(line(now - 650, "Received logon response"))
    v = values(collect(target, state, now))
    assert v[("logged_on", ())] == 1
    assert v[("heartbeat_overdue", ())] == 1
    assert v[("last_logon_timestamp_seconds", ())] == pytest.approx(now - 650, abs=1e-3)
    with event_log.open("a") as f:
        f.write(line(now - 500, "Initiated logout request"))
    v = values(collect(target, state, now))
    assert v[("logged_on", ())] == 0
    assert v[("heartbeat_overdue", ())] == 0
    assert v[("last_logon_timestamp_seconds", ())] == pytest.approx(now - 650, abs=1e-3)
