"""FIX, passive: read a QuickFIX engine's FileStore and FileLog for one session.

One target is one session: it names the store directory (FileStorePath), the
log directory (FileLogPath) and the session's identity, from which the file
prefix ``BeginString-SenderCompID-TargetCompID[-Qualifier]`` follows (or give
``file_prefix``). ``sender_comp_id`` is the engine's own CompID: messages whose
tag 49 equals it are outbound, the rest inbound.

Logs are tailed: each cycle reads only the bytes appended since the last one
(capped by ``max_read_bytes`` per log and by the target's ``response_budget`` for
both, default 64 MiB), so the cost follows the traffic, not the size of the
files; what is left waits for the next cycle. The reads run on the target's own
worker thread; a path that is not a regular file (a FIFO, a directory) fails the
run as ``config`` without being opened, and a ``.seqnums`` or ``.session`` of
more than 4 KiB (a real one holds a line) fails it as ``protocol`` unread.

Order acknowledgement latency pairs each order entry (35=D/G/F) with the first
answer carrying its ClOrdID (11) in the other direction, by the log lines'
timestamps. The orders waiting for an answer are held in memory only, at most
``max_pending_orders`` of them; ClOrdIDs are never exported or logged.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, OrderedDict, deque
from pathlib import Path

from pydantic import Field, model_validator

from ...budget import ReadBudget
from ...file_io import BlockingIO, charge, check_regular, file_error, room
from ...model import Duration, TargetBase
from ...probe import (
    Histogram,
    KindRuntime,
    ProbeContext,
    ProbeError,
    ProbeKind,
    ProbeResult,
    ProbeState,
)
from ..fix.common import BeginString, CompID, Schedule, in_schedule
from . import metrics as M
from .files import Clock, Tail, read_creation_time, read_seqnums

RESPONSE_BUDGET = 64 << 20
"""The kind's default ``response_budget``: both logs at the default ``max_read_bytes``."""
MAX_STORE_FILE_BYTES = 4096
"""``.seqnums`` holds 43 bytes, ``.session`` 17: anything this large is not one."""
_JITTER_SAMPLES = 32
_PENDING_TEST_REQUESTS = 64
_SOH = b"\x01"
_ORDER_ENTRY = frozenset({"D", "G", "F"})
_ANSWERED_BY: dict[str, frozenset[str]] = {
    "8": frozenset({"D", "G", "F"}),  # ExecutionReport answers any order entry
    "9": frozenset({"G", "F"}),  # OrderCancelReject answers a replace or cancel request
}
"""Answer MsgType -> the order-entry MsgTypes it answers."""
_ORDER_FLOW = _ORDER_ENTRY | _ANSWERED_BY.keys()
_MAX_CLORDID_KEY = 64
_LOGON_ATTEMPT = (
    b"Received logon request",
    b"Initiated logon request",
    b"Logon contains ResetSeqNumFlag=Y",
)


class FixStoreTarget(TargetBase):
    """One session of a QuickFIX engine, read from its files."""

    store_path: Path
    """The engine's FileStorePath (holds ``<prefix>.seqnums`` and ``<prefix>.session``)."""
    log_path: Path | None = None
    """The engine's FileLogPath; defaults to ``store_path``."""
    begin_string: BeginString = "FIX.4.4"
    sender_comp_id: CompID
    """The engine's own CompID on this session."""
    target_comp_id: CompID
    session_qualifier: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    file_prefix: str | None = Field(default=None, pattern=r"^[^/\x00]{1,200}$")
    """Overrides the derived file prefix."""
    heartbeat_grace: Duration | None = None
    """Slack past HeartBtInt before a heartbeat is overdue; default 20% of it, at least 1 s."""
    backfill_bytes: int = Field(default=8 << 20, ge=0, le=1 << 40)
    """On the first read of a log, start this many bytes before its end."""
    max_read_bytes: int = Field(default=32 << 20, ge=4096, le=1 << 30)
    """At most this many bytes of each log per cycle; the rest waits for the next."""
    schedule: Schedule | None = None
    ack_timeout: Duration = Field(default=30.0, le=86_400)
    """An order entry not answered this long after it (log time) counts as unacknowledged."""
    max_pending_orders: int = Field(default=10_000, ge=1, le=1_000_000)
    """At most this many order entries wait for an answer; beyond, the oldest is dropped."""

    @model_validator(mode="after")
    def _distinct_comp_ids(self) -> FixStoreTarget:
        if self.sender_comp_id == self.target_comp_id:
            raise ValueError("sender_comp_id and target_comp_id must differ")
        return self

    @property
    def prefix(self) -> str:
        """The QuickFIX file prefix of this session."""
        if self.file_prefix:
            return self.file_prefix
        parts = [self.begin_string, self.sender_comp_id, self.target_comp_id]
        if self.session_qualifier:
            parts.append(self.session_qualifier)
        return "-".join(parts)


def _field(body: bytes, key: bytes) -> bytes | None:
    """The value of the tag ``key`` (``b"\\x0135="``) in a raw message, or None."""
    i = body.find(key)
    if i < 0:
        return None
    i += len(key)
    j = body.find(_SOH, i)
    return body[i:j] if j >= 0 else body[i:]


def _clordid(body: bytes) -> tuple[bytes, int] | None:
    """The ClOrdID (11) of a raw message as a bounded-size key (long ones are hashed),
    and where its field starts; None without one."""
    i = body.find(b"\x0111=")
    if i < 0:
        return None
    j = body.find(_SOH, i + 4)
    value = body[i + 4 : j] if j >= 0 else body[i + 4 :]
    if not value:
        return None
    if len(value) > _MAX_CLORDID_KEY:
        value = hashlib.blake2b(value, digest_size=16).digest()
    return value, i


class OrderAcks:
    """Order entries waiting for their first answer, and the ack latency histogram.

    Keyed by ClOrdID, with the direction the order went: an answer pairs only
    with an order that went the other way, so the engine may be either the
    order sender or the venue. The map keeps log order; when it holds
    ``capacity`` entries the oldest is dropped and counted unacknowledged.
    """

    def __init__(self, timeout: float, capacity: int, buckets: tuple[float, ...]) -> None:
        self.timeout = timeout
        self.capacity = capacity
        self.pending: dict[bytes, tuple[float, str, bool]] = {}
        """ClOrdID -> (log time, MsgType, sent outbound), in log order (oldest first)."""
        self.latency = Histogram(buckets)
        self.unacknowledged = 0

    def sent(self, outbound: bool, clordid: bytes, msg_type: str, ts: float) -> None:
        """An order entry; a ClOrdID already waiting keeps its first time."""
        entry = (ts, msg_type, outbound)
        if self.pending.setdefault(clordid, entry) is not entry:
            return
        if len(self.pending) > self.capacity:
            del self.pending[next(iter(self.pending))]
            self.unacknowledged += 1

    def answer(self, outbound: bool, clordid: bytes, msg_type: str, ts: float) -> None:
        """A possible answer: observed if it answers a waiting order within the timeout."""
        waiting = self.pending.get(clordid)
        if waiting is None or waiting[2] == outbound or waiting[1] not in _ANSWERED_BY[msg_type]:
            return
        del self.pending[clordid]
        latency = ts - waiting[0]
        if latency < 0.0:
            latency = 0.0  # the engine's clock stepped back
        if latency > self.timeout:
            self.unacknowledged += 1  # as if it had expired before the answer was read
        else:
            self.latency.observe(latency)

    def expire(self, now: float) -> None:
        """Count the orders waiting longer than the timeout at ``now`` as unacknowledged."""
        cutoff = now - self.timeout
        while self.pending:
            key, (ts, _, _) = next(iter(self.pending.items()))
            if ts >= cutoff:
                return
            del self.pending[key]
            self.unacknowledged += 1


class SessionTracker:
    """What the logs said so far about one session (counters, last times, state)."""

    def __init__(self, our_comp_id: str, orders: OrderAcks) -> None:
        self.ours = our_comp_id.encode()
        self.orders = orders
        self.clock = Clock()
        self.logged_on: bool | None = None
        self.logon_pending = False
        self.last_logon: float | None = None
        self.heartbeat_interval: float | None = None
        self.last_in: float | None = None
        self.last_out: float | None = None
        self.jitter: deque[float] = deque(maxlen=_JITTER_SAMPLES)
        self.pending_tests: OrderedDict[bytes, float] = OrderedDict()
        self.test_rtt: float | None = None
        self.messages: Counter[tuple[str, str]] = Counter()
        self.resends: Counter[str] = Counter()
        self.rejects: Counter[tuple[str, str]] = Counter()
        self.seq_resets: Counter[tuple[str, str]] = Counter()
        self.logons: Counter[str] = Counter({"success": 0, "failure": 0})
        self.disconnects = 0
        self.heartbeat_timeouts = 0

    def message(self, line: bytes) -> None:
        """Account for one ``TIME : RAW`` line of the messages log."""
        ts_text, sep, body = line.partition(b" : ")
        ts = self.clock(ts_text) if sep else None
        mtype_raw = _field(body, b"\x0135=")
        if ts is None or mtype_raw is None:
            return
        mtype = mtype_raw.decode(errors="replace")
        outbound = _field(body, b"\x0149=") == self.ours
        direction = "outbound" if outbound else "inbound"
        self.messages[(direction, M.msg_type_label(mtype))] += 1
        if mtype in _ORDER_FLOW:  # first: most of a trading session's traffic
            self._order_flow(body, mtype, outbound, ts)
        elif mtype == "0" and not outbound:
            self._inbound_heartbeat(ts, _field(body, b"\x01112="))
        elif mtype == "1" and outbound:
            test_id = _field(body, b"\x01112=")
            if test_id:
                self.pending_tests[test_id] = ts
                if len(self.pending_tests) > _PENDING_TEST_REQUESTS:
                    self.pending_tests.popitem(last=False)
        elif mtype == "A":
            hbi = _field(body, b"\x01108=")
            if hbi and hbi.isdigit():
                self.heartbeat_interval = float(hbi)
        elif mtype == "2":
            self.resends[direction] += 1
        elif mtype in ("3", "j"):
            self.rejects[(direction, "session" if mtype == "3" else "business")] += 1
        elif mtype == "4":
            gap_fill = _field(body, b"\x01123=") == b"Y"
            self.seq_resets[(direction, "gap_fill" if gap_fill else "reset")] += 1
        if outbound:
            self.last_out = ts
        else:
            self.last_in = ts

    def _order_flow(self, body: bytes, mtype: str, outbound: bool, ts: float) -> None:
        found = _clordid(body)
        if found is None:
            return
        clordid, at = found
        if mtype in _ORDER_ENTRY:
            # PossDupFlag (43=Y): a resend, not a new order. A header field, so before 11.
            if body.find(b"\x0143=Y\x01", 0, at + 1) < 0:
                self.orders.sent(outbound, clordid, mtype, ts)
        else:
            self.orders.answer(outbound, clordid, mtype, ts)

    def _inbound_heartbeat(self, ts: float, test_id: bytes | None) -> None:
        if test_id:
            sent = self.pending_tests.pop(test_id, None)
            if sent is not None:
                self.test_rtt = max(0.0, ts - sent)
            return  # an answer to a TestRequest is not a periodic heartbeat
        if self.heartbeat_interval and self.last_in is not None:
            self.jitter.append(abs(ts - self.last_in - self.heartbeat_interval))

    def event(self, line: bytes) -> None:
        """Account for one ``TIME : TEXT`` line of the event log."""
        ts_text, sep, text = line.partition(b" : ")
        if text.startswith(_LOGON_ATTEMPT):
            self.logon_pending = True
        elif text.startswith(b"Rejected Logon Attempt"):
            self.logons["failure"] += 1
            self.logon_pending = False
        elif text.startswith((b"Responding to logon request", b"Received logon response")):
            self.logons["success"] += 1
            self.logon_pending, self.logged_on = False, True
            ts = self.clock(ts_text) if sep else None
            if ts is not None:
                self.last_logon = ts
        elif text.startswith(b"Disconnecting"):
            self.disconnects += 1
            if self.logon_pending:
                self.logons["failure"] += 1
            self.logon_pending, self.logged_on = False, False
        elif text.startswith((b"Received logout request", b"Initiated logout request")):
            self.logged_on = False
        elif text.startswith(b"Timed out waiting for heartbeat"):
            self.heartbeat_timeouts += 1


class FixStoreState(ProbeState):
    """Open log tails, what they said, and the store values of the last cycle."""

    def __init__(self, target: FixStoreTarget) -> None:
        log_dir = target.log_path or target.store_path
        self.budget = ReadBudget(target.response_budget or RESPONSE_BUDGET)
        self.io = BlockingIO("an earlier read of the session's files has not returned")
        buckets = M.ORDER_ACK_LATENCY.buckets
        orders = OrderAcks(target.ack_timeout, target.max_pending_orders, buckets)
        self.tracker = SessionTracker(target.sender_comp_id, orders)
        self.messages = Tail(
            log_dir / f"{target.prefix}.messages.current.log", target.backfill_bytes
        )
        self.events = Tail(log_dir / f"{target.prefix}.event.current.log", target.backfill_bytes)
        self.creation: int | None = None
        self.seqnums: tuple[int, int] | None = None
        self.integrity_ok = True
        self.regressions = 0

    def check_store(self, creation: int | None, seqnums: tuple[int, int]) -> None:
        """Latch the integrity signal when a seqnum goes backwards without a reset."""
        if creation != self.creation:
            self.integrity_ok = True  # a new store: sequence numbers start again
        elif self.seqnums is not None and (
            seqnums[0] < self.seqnums[0] or seqnums[1] < self.seqnums[1]
        ):
            self.integrity_ok = False
            self.regressions += 1
        self.creation, self.seqnums = creation, seqnums

    async def aclose(self) -> None:
        self.io.after(self._close)  # a read still stuck in its thread closes them on return

    def _close(self) -> None:
        self.messages.close()
        self.events.close()


def _store_file(path: Path, budget: ReadBudget) -> Path:
    """``path`` once it is known to be a small regular file (charged to the budget)."""
    st = os.stat(path)
    check_regular(st, path.name)
    if st.st_size > MAX_STORE_FILE_BYTES:
        size = f"{st.st_size} bytes"
        raise ProbeError("protocol", f"{path.name} is {size}: not a QuickFIX store file")
    charge(budget, st.st_size, path.name)
    return path


def _read_store(target: FixStoreTarget, state: FixStoreState, budget: ReadBudget) -> None:
    base = target.store_path / target.prefix
    try:
        seqnums = read_seqnums(_store_file(base.with_name(base.name + ".seqnums"), budget))
        creation = read_creation_time(_store_file(base.with_name(base.name + ".session"), budget))
    except FileNotFoundError:
        raise ProbeError("config", f"no QuickFIX store for {target.prefix} in store_path") from None
    except ValueError as exc:
        raise ProbeError("protocol", f"unreadable .seqnums: {exc}") from None
    except OSError as exc:
        raise file_error(exc, Path(exc.filename or base).name) from None
    state.check_store(creation, seqnums)


def _read_log(tail: Tail, max_bytes: int, budget: ReadBudget) -> list[bytes]:
    """The log's new lines, at most ``max_bytes`` or what is left of the budget."""
    try:
        check_regular(os.stat(tail.path), tail.path.name)  # never open a FIFO: it blocks
    except FileNotFoundError:
        pass  # no log yet, or rotated away: the tail knows what to do
    except OSError as exc:
        raise file_error(exc, tail.path.name) from None
    before = tail.bytes_read
    try:
        lines = tail.read_lines(room(budget, max_bytes))
    except OSError as exc:
        raise file_error(exc, tail.path.name) from None
    charge(budget, tail.bytes_read - before, tail.path.name)
    return lines


def _overdue(target: FixStoreTarget, t: SessionTracker, now: float) -> bool | None:
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


def _series(target: FixStoreTarget, state: FixStoreState, now: float) -> ProbeResult:
    r = ProbeResult()
    s, t = target.name, state.tracker
    r.add(M.SESSION_INFO, 1, s, target.begin_string, target.sender_comp_id, target.target_comp_id)
    r.add(M.IN_SCHEDULE, in_schedule(target.schedule, now), s)
    if state.seqnums is not None:
        r.add(M.NEXT_SENDER_SEQNUM, state.seqnums[0], s)
        r.add(M.NEXT_TARGET_SEQNUM, state.seqnums[1], s)
    r.add(M.STORE_CREATION, state.creation, s)
    r.add(M.STORE_INTEGRITY, state.integrity_ok, s)
    r.add(M.SEQNUM_REGRESSIONS, state.regressions, s)
    r.add(M.LOGGED_ON, t.logged_on, s)
    r.add(M.LAST_LOGON, t.last_logon, s)
    r.add(M.LAST_INBOUND, t.last_in, s)
    r.add(M.LAST_OUTBOUND, t.last_out, s)
    r.add(M.HEARTBEAT_INTERVAL, t.heartbeat_interval, s)
    r.add(M.HEARTBEAT_OVERDUE, _overdue(target, t, now), s)
    r.add(M.HEARTBEAT_JITTER, sum(t.jitter) / len(t.jitter) if t.jitter else None, s)
    r.add(M.TEST_REQUEST_RTT, t.test_rtt, s)
    r.add_histogram(t.orders.latency.sample(M.ORDER_ACK_LATENCY, s))
    r.add(M.ORDERS_UNACKNOWLEDGED, t.orders.unacknowledged, s)
    r.add(M.ORDERS_PENDING, len(t.orders.pending), s)
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
    for name, tail in (("messages", state.messages), ("event", state.events)):
        r.add(M.LOG_BYTES_READ, tail.bytes_read, s, name)
        r.add(M.LOG_BACKLOG, tail.backlog if tail.file is not None else None, s, name)
        r.add(M.LOG_ROTATIONS, tail.reopens, s, name)
    return r


def collect(
    target: FixStoreTarget, state: FixStoreState, now: float, budget: ReadBudget | None = None
) -> ProbeResult:
    """One cycle, blocking: read the store, the new log lines, and build the series.

    ``budget`` bounds the bytes read (a fresh one of the kind's default when None).
    The probe runs it on the state's worker, so a read still hanging from an
    earlier run (a stuck filesystem) fails the next run at once instead of
    queueing another thread behind it."""
    return _collect(target, state, now, budget or ReadBudget(RESPONSE_BUDGET))


def _expiry_clock(state: FixStoreState, now: float) -> float:
    """The time pending orders age against: the wall clock once the messages log is
    read to its end, else the newest line read (an answer may still be in the backlog)."""
    tail, t = state.messages, state.tracker
    if tail.backlog == 0 and not tail.rotated:
        return now
    return max(t.last_in or 0.0, t.last_out or 0.0)


def _collect(
    target: FixStoreTarget, state: FixStoreState, now: float, budget: ReadBudget
) -> ProbeResult:
    _read_store(target, state, budget)
    tracker = state.tracker
    # the event log first: it is small, and a messages backlog must not starve it
    events = _read_log(state.events, target.max_read_bytes, budget)
    for line in _read_log(state.messages, target.max_read_bytes, budget):
        tracker.message(line)
    tracker.orders.expire(_expiry_clock(state, now))
    for line in events:
        tracker.event(line)
    return _series(target, state, now)


async def probe(target: FixStoreTarget, ctx: ProbeContext[FixStoreState]) -> ProbeResult:
    """Read one session's store and logs (on the target's own worker: it is file I/O)."""
    state = ctx.state
    return await state.io.call(collect, target, state, ctx.now(), state.budget)


RUNTIME: KindRuntime[FixStoreTarget, FixStoreState] = KindRuntime(probe, FixStoreState)

KIND: ProbeKind[FixStoreTarget, FixStoreState] = ProbeKind(
    name="fix_store",
    target_model=FixStoreTarget,
    families=M.FAMILIES,
    load=lambda: RUNTIME,
    address_field="store_path",
    example_address="/var/lib/quickfix/store",
    response_budget=RESPONSE_BUDGET,
)
