"""The canary's bookkeeping: the events it publishes and the counts kept across runs.

Each canary is a small JSON document that names itself (``type``), the probe
instance that sent it (a random id, so replicas and restarts never confuse each
other's canaries) and a sequence number. The tracker keeps the counts and the
latency histogram across runs, so a failed run loses nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

from ...probe import Histogram

CANARY_TYPE = "tradeops.eventbus.canary"


@dataclass(slots=True)
class CanaryTracker:
    """Counters and the round-trip histogram, kept across runs."""

    buckets: tuple[float, ...]
    sent: int = 0
    lost: int = 0
    out_of_order: int = 0
    next_seq: int = 0
    max_seen: int = -1
    pending: dict[int, float] = field(default_factory=dict)
    """Sequence number -> monotonic time it was published."""
    rtt: Histogram = field(init=False)
    last_rtt: float | None = None
    last_success: float | None = None

    def __post_init__(self) -> None:
        self.rtt = Histogram(self.buckets)

    @property
    def received(self) -> int:
        """Canaries read back within the deadline: the round trips observed."""
        return self.rtt.count

    def new(self, now: float) -> int:
        """Allocate the next canary and start its clock."""
        seq = self.next_seq
        self.next_seq += 1
        self.sent += 1
        self.pending[seq] = now
        return seq

    def failed(self, seq: int) -> None:
        """The transport refused the canary: it is lost now."""
        if self.pending.pop(seq, None) is not None:
            self.lost += 1

    def expire(self, now: float, deadline: float) -> int:
        """Count canaries older than ``deadline`` as lost; returns how many."""
        old = [s for s, t in self.pending.items() if now - t > deadline]
        for seq in old:
            del self.pending[seq]
        self.lost += len(old)
        return len(old)

    def seen(self, seq: int, now: float, wall: float, deadline: float) -> None:
        """A canary of this probe came back."""
        if seq < self.max_seen:
            self.out_of_order += 1
        self.max_seen = max(self.max_seen, seq)
        sent_at = self.pending.pop(seq, None)
        if sent_at is None:
            return  # a duplicate or a late arrival (already counted lost)
        rtt = now - sent_at
        if rtt > deadline:
            self.lost += 1
            return
        self.rtt.observe(rtt)
        self.last_rtt = rtt
        self.last_success = wall


def encode(instance: str, target: str, seq: int) -> bytes:
    """A canary event: identifiable by ``type``, ``probe`` and ``seq``."""
    doc = {"type": CANARY_TYPE, "probe": instance, "target": target, "seq": seq}
    doc["sent_at"] = round(time.time(), 6)
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(raw: bytes | str | None, instance: str) -> int | None:
    """The sequence number of one of *this* probe's canaries; None for anything else."""
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("type") != CANARY_TYPE:
        return None
    seq = doc.get("seq")
    if doc.get("probe") != instance or isinstance(seq, bool) or not isinstance(seq, int):
        return None
    return seq


def new_instance_id() -> str:
    """A random id for one probe state: canaries of other probes are ignored."""
    return uuid.uuid4().hex
