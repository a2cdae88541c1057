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
run as ``config`` without being opened (the store's files: ``store``).

The lines are read by ``tracker.SessionTracker``, order acknowledgement by
``orders.OrderAcks``; ``series`` turns what they hold into samples.
"""

from __future__ import annotations

import os

from ...budget import ReadBudget
from ...file_io import BlockingIO, charge, check_regular, file_error, room
from ...probe import KindRuntime, ProbeContext, ProbeResult, ProbeState
from . import metrics as M
from .config import RESPONSE_BUDGET, FixStoreTarget
from .files import Tail
from .orders import OrderAcks
from .series import series
from .store import StoreHistory, read_store
from .tracker import SessionTracker


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
        self.store = StoreHistory()

    async def aclose(self) -> None:
        self.io.after(self._close)  # a read still stuck in its thread closes them on return

    def _close(self) -> None:
        self.messages.close()
        self.events.close()


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
    state.store.update(*read_store(target, budget))
    tracker = state.tracker
    # the event log first: it is small, and a messages backlog must not starve it
    events = _read_log(state.events, target.max_read_bytes, budget)
    for line in _read_log(state.messages, target.max_read_bytes, budget):
        tracker.message(line)
    tracker.orders.expire(_expiry_clock(state, now))
    for line in events:
        tracker.event(line)
    return series(target, state, now)


async def probe(target: FixStoreTarget, ctx: ProbeContext[FixStoreState]) -> ProbeResult:
    """Read one session's store and logs (on the target's own worker: it is file I/O)."""
    state = ctx.state
    return await state.io.call(collect, target, state, ctx.now(), state.budget)


RUNTIME: KindRuntime[FixStoreTarget, FixStoreState] = KindRuntime(probe, FixStoreState)
