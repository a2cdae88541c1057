"""The ``fix_session_*`` series of one cycle, from the store, the tracker and the tails."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...probe import ProbeResult
from ..fix.common import in_schedule
from . import metrics as M
from .config import FixStoreTarget
from .tracker import SessionTracker

if TYPE_CHECKING:
    from .probe import FixStoreState


def overdue(target: FixStoreTarget, t: SessionTracker, now: float) -> bool | None:
    """Whether the counterparty is silent past HeartBtInt + grace; None when not knowable.

    Unknown logged-on state (no logon or logout in the log read so far) gives
    None, never False: an engine that never logged on must not read as healthy.
    Logged out gives False: no heartbeat is owed, and ``logged_on`` is 0."""
    if t.logged_on is None:
        return None
    if not t.logged_on:
        return False
    if t.heartbeat_interval is None or t.last_in is None:
        return None
    grace = target.heartbeat_grace or max(1.0, 0.2 * t.heartbeat_interval)
    return now - t.last_in > t.heartbeat_interval + grace


def series(target: FixStoreTarget, state: FixStoreState, now: float) -> ProbeResult:
    """Every series of the session after a cycle."""
    r = ProbeResult()
    s, store = target.name, state.store
    r.add(M.SESSION_INFO, 1, s, target.begin_string, target.sender_comp_id, target.target_comp_id)
    r.add(M.IN_SCHEDULE, in_schedule(target.schedule, now), s)
    if store.seqnums is not None:
        r.add(M.NEXT_SENDER_SEQNUM, store.seqnums[0], s)
        r.add(M.NEXT_TARGET_SEQNUM, store.seqnums[1], s)
    r.add(M.STORE_CREATION, store.creation, s)
    r.add(M.STORE_INTEGRITY, store.integrity_ok, s)
    r.add(M.SEQNUM_REGRESSIONS, store.regressions, s)
    _session_series(r, target, state.tracker, now)
    _counter_series(r, s, state.tracker)
    for name, tail in (("messages", state.messages), ("event", state.events)):
        r.add(M.LOG_BYTES_READ, tail.bytes_read, s, name)
        r.add(M.LOG_BACKLOG, tail.backlog if tail.file is not None else None, s, name)
        r.add(M.LOG_ROTATIONS, tail.reopens, s, name)
        r.add(M.LOG_UNPARSED, state.tracker.unparsed[name], s, name)
    return r


def _session_series(r: ProbeResult, target: FixStoreTarget, t: SessionTracker, now: float) -> None:
    """State, last times, heartbeats and order acknowledgement."""
    s = target.name
    r.add(M.LOGGED_ON, t.logged_on, s)
    r.add(M.LAST_LOGON, t.last_logon, s)
    r.add(M.LAST_INBOUND, t.last_in, s)
    r.add(M.LAST_OUTBOUND, t.last_out, s)
    r.add(M.HEARTBEAT_INTERVAL, t.heartbeat_interval, s)
    r.add(M.HEARTBEAT_OVERDUE, overdue(target, t, now), s)
    r.add(M.HEARTBEAT_JITTER, sum(t.jitter) / len(t.jitter) if t.jitter else None, s)
    r.add(M.TEST_REQUEST_RTT, t.test_rtt, s)
    r.add_histogram(t.orders.latency.sample(M.ORDER_ACK_LATENCY, s))
    r.add(M.ORDERS_UNACKNOWLEDGED, t.orders.unacknowledged, s)
    r.add(M.ORDERS_PENDING, len(t.orders.pending), s)


def _counter_series(r: ProbeResult, s: str, t: SessionTracker) -> None:
    """The message and event counters, every label value present from the start."""
    for direction in ("inbound", "outbound"):
        for label in (*M.MSG_TYPES.values(), "other"):
            r.add(M.MESSAGES, t.messages[(direction, label)], s, direction, label)
        r.add(M.RESEND_REQUESTS, t.resends[direction], s, direction)
        for level in ("session", "business"):
            r.add(M.REJECTS, t.rejects[(direction, level)], s, direction, level)
        for mode in ("gap_fill", "reset"):
            r.add(M.SEQUENCE_RESETS, t.seq_resets[(direction, mode)], s, direction, mode)
    for result, count in t.logons.items():
        r.add(M.LOGONS, count, s, result)
    r.add(M.DISCONNECTS, t.disconnects, s)
    r.add(M.HEARTBEAT_TIMEOUTS, t.heartbeat_timeouts, s)
