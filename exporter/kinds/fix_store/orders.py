"""Order acknowledgement latency: each order entry paired with its first answer.

An order entry (35=D/G/F) is paired with the first answer carrying its ClOrdID
(11) in the other direction, by the log lines' timestamps. The orders waiting
for an answer are held in memory only, at most ``capacity`` of them; ClOrdIDs
are never exported or logged.
"""

from __future__ import annotations

import hashlib

from ...probe import Histogram

ORDER_ENTRY = frozenset({"D", "G", "F"})
_ANSWERED_BY: dict[str, frozenset[str]] = {
    "8": frozenset({"D", "G", "F"}),  # ExecutionReport answers any order entry
    "9": frozenset({"G", "F"}),  # OrderCancelReject answers a replace or cancel request
}
"""Answer MsgType -> the order-entry MsgTypes it answers."""
ORDER_FLOW = ORDER_ENTRY | _ANSWERED_BY.keys()
"""The MsgTypes ``OrderAcks.message`` looks at."""
_MAX_CLORDID_KEY = 64
_SOH = b"\x01"


def clordid_key(body: bytes) -> tuple[bytes, int] | None:
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

    def message(self, body: bytes, msg_type: str, outbound: bool, ts: float) -> None:
        """Account for one raw message of a type in ``ORDER_FLOW``."""
        found = clordid_key(body)
        if found is None:
            return
        key, at = found
        if msg_type in ORDER_ENTRY:
            # PossDupFlag (43=Y): a resend, not a new order. A header field, so before 11.
            if body.find(b"\x0143=Y\x01", 0, at + 1) < 0:
                self.sent(outbound, key, msg_type, ts)
        else:
            self.answer(outbound, key, msg_type, ts)

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
