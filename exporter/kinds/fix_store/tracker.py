"""What a session's FileLog says: counters, last times and logged-on state, line by line.

``SessionTracker.message`` reads one ``TIME : <raw FIX>`` line of the messages
log (direction from tag 49), ``SessionTracker.event`` one ``TIME : text`` line
of the event log. Lines that are neither are skipped and counted in
``unparsed`` by log.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque

from . import metrics as M
from .files import Clock
from .orders import ORDER_FLOW, OrderAcks

_JITTER_SAMPLES = 32
_PENDING_TEST_REQUESTS = 64
_SOH = b"\x01"
_LOGON_ATTEMPT = (
    b"Received logon request",
    b"Initiated logon request",
    b"Logon contains ResetSeqNumFlag=Y",
)


def field(body: bytes, key: bytes) -> bytes | None:
    """The value of the tag ``key`` (``b"\\x0135="``) in a raw message, or None."""
    i = body.find(key)
    if i < 0:
        return None
    i += len(key)
    j = body.find(_SOH, i)
    return body[i:j] if j >= 0 else body[i:]


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
        self.unparsed: Counter[str] = Counter({"messages": 0, "event": 0})
        """Lines skipped by log: no parseable time, or (messages) no MsgType (35)."""

    def message(self, line: bytes) -> None:
        """Account for one ``TIME : RAW`` line of the messages log."""
        ts_text, sep, body = line.partition(b" : ")
        ts = self.clock(ts_text) if sep else None
        mtype_raw = field(body, b"\x0135=")
        if ts is None or mtype_raw is None:
            self.unparsed["messages"] += 1
            return
        mtype = mtype_raw.decode(errors="replace")
        outbound = field(body, b"\x0149=") == self.ours
        self.messages[("outbound" if outbound else "inbound", M.msg_type_label(mtype))] += 1
        if mtype in ORDER_FLOW:  # first: most of a trading session's traffic
            self.orders.message(body, mtype, outbound, ts)
        else:
            self._session_level(body, mtype, outbound, ts)
        if outbound:
            self.last_out = ts
        else:
            self.last_in = ts

    def _session_level(self, body: bytes, mtype: str, outbound: bool, ts: float) -> None:
        direction = "outbound" if outbound else "inbound"
        if mtype == "0" and not outbound:
            self._inbound_heartbeat(ts, field(body, b"\x01112="))
        elif mtype == "1" and outbound:
            test_id = field(body, b"\x01112=")
            if test_id:
                self.pending_tests[test_id] = ts
                if len(self.pending_tests) > _PENDING_TEST_REQUESTS:
                    self.pending_tests.popitem(last=False)
        elif mtype == "A":
            hbi = field(body, b"\x01108=")
            if hbi and hbi.isdigit():
                self.heartbeat_interval = float(hbi)
        elif mtype == "2":
            self.resends[direction] += 1
        elif mtype in ("3", "j"):
            self.rejects[(direction, "session" if mtype == "3" else "business")] += 1
        elif mtype == "4":
            gap_fill = field(body, b"\x01123=") == b"Y"
            self.seq_resets[(direction, "gap_fill" if gap_fill else "reset")] += 1

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
        ts = self.clock(ts_text) if sep else None
        if ts is None:
            self.unparsed["event"] += 1  # its text is matched all the same
        if text.startswith(_LOGON_ATTEMPT):
            self.logon_pending = True
        elif text.startswith(b"Rejected Logon Attempt"):
            self.logons["failure"] += 1
            self.logon_pending = False
        elif text.startswith((b"Responding to logon request", b"Received logon response")):
            self.logons["success"] += 1
            self.logon_pending, self.logged_on = False, True
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
