"""Pure lag arithmetic for the Kafka probe: the time-lag interpolation table,
the Burrow-style status of a consumer-group partition and the time-to-drain
estimate. No I/O; every function takes its clock as an argument."""

from __future__ import annotations

import bisect
import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise


@dataclass(slots=True)
class OffsetTable:
    """(log-end offset, poll time) points of one partition, oldest first.

    Offsets never decrease along the table. A flat run (the log end did not
    move) is stored as its first and latest point only, so a quiet topic does
    not fill the table. Past ``capacity`` points, every second point of the
    older half is dropped: the table keeps its oldest point and covers an ever
    longer span at a coarser resolution instead of forgetting the past.
    """

    capacity: int = 64
    offsets: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    def add(self, offset: int, at: float) -> None:
        """Record that the log end was ``offset`` at Unix time ``at``."""
        if self.offsets and (offset < self.offsets[-1] or at < self.times[-1]):
            self.offsets.clear()  # the log was truncated or recreated: history is void
            self.times.clear()
        if len(self.offsets) >= 2 and self.offsets[-2] == self.offsets[-1] == offset:
            self.times[-1] = at
            return
        self.offsets.append(offset)
        self.times.append(at)
        if len(self.offsets) > self.capacity:
            self._thin()

    def _thin(self) -> None:
        half = len(self.offsets) // 2
        keep = [0, *range(2, half, 2), *range(half, len(self.offsets))]
        self.offsets = [self.offsets[i] for i in keep]
        self.times = [self.times[i] for i in keep]

    def __len__(self) -> int:
        return len(self.offsets)

    def time_lag(self, committed: int, now: float) -> tuple[float, bool] | None:
        """Seconds since the first unconsumed message was produced, estimated.

        Returns ``(seconds, lower_bound)``: ``lower_bound`` is True when that
        message is older than the table's oldest point, in which case the
        value is the age of that point (a floor, never an invention). ``None``
        when the table is empty.
        """
        if not self.offsets:
            return None
        if committed >= self.offsets[-1]:
            return 0.0, False
        # Message ``committed`` exists once the log end reaches committed + 1.
        wanted = committed + 1
        j = bisect.bisect_left(self.offsets, wanted)
        if j == 0:
            return max(0.0, now - self.times[0]), True
        lo_off, lo_t = self.offsets[j - 1], self.times[j - 1]
        hi_off, hi_t = self.offsets[j], self.times[j]
        produced = lo_t + (wanted - lo_off) / (hi_off - lo_off) * (hi_t - lo_t)
        return max(0.0, now - produced), False


class Status(enum.IntEnum):
    """Burrow-style consumer status; a higher value is worse."""

    OK = 0
    WARN = 1
    REWIND = 2
    STALL = 3
    STOP = 4

    @property
    def label(self) -> str:
        """The ``status`` label value."""
        return self.name.lower()


STATUSES: tuple[Status, ...] = tuple(Status)
"""Every status, best first (iterating the enum itself is slower)."""
LABELS: dict[Status, str] = {s: s.label for s in STATUSES}


@dataclass(frozen=True, slots=True)
class Point:
    """One observation of a group partition."""

    at: float
    committed: int
    lag: int
    """Log-end minus committed offset, at least 0."""


def evaluate(commits: Sequence[int], lags: Sequence[int], size: int, has_members: bool) -> Status:
    """The status of one group partition from its last ``size`` observations
    (committed offsets and lags, oldest first).

    - REWIND: the committed offset went backwards inside the window.
    - STALL / STOP: the window is full, the committed offset never moved and
      the lag stayed above zero: no commit progress for the window's whole
      span. STALL while the group still has members (a consumer is present
      but stuck), STOP when it has none (nobody is consuming).
    - OK: the lag touched zero inside the window.
    - WARN: the lag never shrank and grew across the window.
    - OK otherwise, and while fewer than two observations exist.
    """
    if len(commits) < 2:
        return Status.OK
    if any(b < a for a, b in pairwise(commits)):
        return Status.REWIND
    if len(commits) >= size and commits[0] == commits[-1] and min(lags) > 0:
        return Status.STALL if has_members else Status.STOP
    if min(lags) == 0:
        return Status.OK
    if all(b >= a for a, b in pairwise(lags)) and lags[-1] > lags[0]:
        return Status.WARN
    return Status.OK


@dataclass(slots=True)
class PartitionHistory:
    """The status window of one group partition, as the facts ``evaluate`` looks for,
    and when its committed offset last moved.

    There is one per group partition, 100,000 on a large cluster, so the window's
    observations are not kept: each fact is kept as its age, the observations added
    since it was last seen (``size`` when it is older than any window), and a window of
    ``n`` observations holds a change between two of them when its age is below
    ``n - 1``, a lag of zero when its age is below ``n``. Whatever ``size``, this costs
    the same few integers.
    """

    size: int
    count: int = 0
    """Observations in the window (at most ``size``)."""
    committed: int = -1
    """The latest committed offset."""
    lag: int = 0
    """The latest lag (at least 0)."""
    moved_at: float = 0.0
    """Unix time the committed offset was first seen at its current value."""
    rewound: int = field(init=False)
    """Age of the last committed offset lower than the one before."""
    moved: int = field(init=False)
    """Age of the last committed offset other than the one before."""
    shrunk: int = field(init=False)
    """Age of the last lag lower than the one before."""
    changed: int = field(init=False)
    """Age of the last lag other than the one before."""
    caught_up: int = field(init=False)
    """Age of the last lag of zero."""

    def __post_init__(self) -> None:
        never = self.size
        self.rewound = self.moved = self.shrunk = self.changed = self.caught_up = never

    def __len__(self) -> int:
        return self.count

    def add(self, point: Point) -> None:
        """Add an observation, the oldest leaving the window beyond ``size``."""
        c, lag, cap = point.committed, point.lag, self.size
        if not self.count:  # the first is compared with itself: nothing changed
            self.committed, self.lag, self.moved_at = c, lag, point.at
        elif c != self.committed:
            self.moved_at = point.at
        self.rewound = 0 if c < self.committed else min(self.rewound + 1, cap)
        self.moved = 0 if c != self.committed else min(self.moved + 1, cap)
        self.shrunk = 0 if lag < self.lag else min(self.shrunk + 1, cap)
        self.changed = 0 if lag != self.lag else min(self.changed + 1, cap)
        self.caught_up = 0 if lag == 0 else min(self.caught_up + 1, cap)
        self.count = min(self.count + 1, cap)
        self.committed, self.lag = c, lag

    def status(self, has_members: bool) -> Status:
        """The partition's status over its window: what ``evaluate`` says of the
        window's committed offsets and lags (which are never negative)."""
        n = self.count
        if n < 2:
            return Status.OK
        if self.rewound < n - 1:
            return Status.REWIND
        caught_up = self.caught_up < n
        if n >= self.size and self.moved >= n - 1 and not caught_up:
            return Status.STALL if has_members else Status.STOP
        if caught_up:
            return Status.OK
        if self.shrunk >= n - 1 and self.changed < n - 1:
            return Status.WARN
        return Status.OK


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over a group's committed partitions of one topic at one poll."""

    at: float
    partitions: int
    committed: int
    end: int


@dataclass(slots=True)
class DrainHistory:
    """A window of per-topic totals, for the net consume rate."""

    size: int
    window: deque[Totals] = field(default_factory=deque)

    def add(self, totals: Totals) -> None:
        """Append totals; a change in the partition count restarts the window."""
        if self.window and self.window[-1].partitions != totals.partitions:
            self.window.clear()
        self.window.append(totals)
        while len(self.window) > self.size:
            self.window.popleft()

    def estimate(self, lag: int) -> tuple[float | None, bool] | None:
        """``(seconds to drain, draining)`` for the current ``lag``.

        ``(0, True)`` when there is no lag; ``(None, False)`` when the lag is
        not shrinking (net consume rate <= 0); ``None`` while fewer than two
        polls exist.
        """
        if lag <= 0:
            return 0.0, True
        if len(self.window) < 2:
            return None
        first, last = self.window[0], self.window[-1]
        span = last.at - first.at
        if span <= 0:
            return None
        net = ((last.committed - first.committed) - (last.end - first.end)) / span
        if net <= 0:
            return None, False
        return lag / net, True
