"""FIX, active: a monitoring session that logs on to a venue or gateway.

Each run connects (TCP, optionally TLS), sends Logon (35=A), a TestRequest
(35=1) with a unique TestReqID (112), waits for the Heartbeat (35=0) that
echoes it, and logs out (35=5) (the exchange is in ``client``). It reports the
connect, logon, test-request and logout times, success, and one failure reason
from a fixed set (``metrics.FAILURE_REASONS``). A failed run keeps its failure
series (and whatever timings it measured) while the framework counts the error
under the mapped generic reason.

The session must use its own SenderCompID: logging on with a production CompID
would disconnect or reset the production session (``config`` checks it).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

from ...probe import KindRuntime, ProbeContext, ProbeError, ProbeResult, ProbeState, Reason
from . import metrics as M
from .client import FixFailure, Timings, connect, logon, logout, request_heartbeat
from .common import in_schedule
from .config import FixTarget

FRAMEWORK_REASON: dict[str, Reason] = {
    "refused": "refused",
    "timeout": "timeout",
    "logon_rejected": "auth",
    "logout_received": "protocol",
    "garbled": "protocol",
    "bad_checksum": "protocol",
    "seqnum_too_low": "protocol",
    "out_of_schedule": "other",
    "other": "other",
}
"""FIX failure reason -> the framework's generic reason for ``probe_errors_total``."""


class FixState(ProbeState):
    """Failure counters and, without 141=Y, the sequence numbers across runs."""

    def __init__(self, target: FixTarget) -> None:
        self.failures: Counter[str] = Counter({r: 0 for r in M.FAILURE_REASONS})
        self.next_out_seq = 1
        self._ids = itertools.count(1)
        self.tls_context = target.tls.context() if target.tls is not None else None

    def test_req_id(self) -> str:
        """A TestReqID unique to this exporter process and run."""
        return f"tradeops-{time.time_ns()}-{next(self._ids)}"


async def _session(target: FixTarget, state: FixState, tm: Timings, deadline: float) -> None:
    start = time.perf_counter()
    first_seq = 1 if target.reset_seq_num else state.next_out_seq
    conn = await connect(target, state.tls_context, state.budget, first_seq)
    tm.connect = time.perf_counter() - start
    try:
        await logon(conn, tm)
        await request_heartbeat(conn, state.test_req_id(), tm)
        await logout(conn, tm, deadline)
    except FixFailure as exc:
        if exc.expecting is not None:  # start where the acceptor expects on the next run
            state.next_out_seq = exc.expecting
        raise
    finally:
        if not target.reset_seq_num:
            state.next_out_seq = max(state.next_out_seq, conn.seq)
        conn.abort()


async def _attempt(
    target: FixTarget, ctx: ProbeContext[FixState], tm: Timings
) -> FixFailure | None:
    """Run the session under the deadline (less a margin); its failure, if any."""
    loop = asyncio.get_running_loop()
    margin = min(0.2, (ctx.deadline - loop.time()) * 0.1)
    try:
        async with asyncio.timeout_at(ctx.deadline - margin):
            await _session(target, ctx.state, tm, ctx.deadline - 2 * margin)
    except TimeoutError:
        return FixFailure("timeout", "no answer from the acceptor before the deadline")
    except FixFailure as exc:
        return exc
    except (ConnectionError, OSError) as exc:
        return FixFailure("other", f"connection error: {type(exc).__name__}")
    return None


def _series(
    r: ProbeResult, target: FixTarget, tm: Timings, failure: str | None, sched: bool
) -> None:
    s = target.name
    r.add(M.PROBE_INFO, 1, s, target.begin_string, target.sender_comp_id, target.target_comp_id)
    r.add(M.PROBE_IN_SCHEDULE, sched, s)
    r.add(M.PROBE_SUCCESS, failure is None, s)
    r.add(M.PROBE_CONNECT, tm.connect, s)
    r.add(M.PROBE_LOGON, tm.logon, s)
    r.add(M.PROBE_TEST_REQUEST, tm.test_request, s)
    r.add(M.PROBE_LOGOUT, tm.logout, s)
    r.add(M.PROBE_PEER_SEQNUM, tm.peer_seqnum, s)
    for reason in M.FAILURE_REASONS:
        r.add(M.PROBE_FAILURE, reason == failure, s, reason)


async def probe(target: FixTarget, ctx: ProbeContext[FixState]) -> ProbeResult:
    """Run one monitoring session against the venue."""
    state = ctx.state
    r = ProbeResult()
    tm = Timings()
    sched = in_schedule(target.schedule, ctx.now())
    if sched:
        failure = await _attempt(target, ctx, tm)
    else:
        failure = FixFailure("out_of_schedule", "outside the session's trading schedule")
    if failure is not None:
        state.failures[failure.reason] += 1
    _series(r, target, tm, failure.reason if failure else None, sched)
    for reason, count in state.failures.items():
        r.add(M.PROBE_FAILURES, count, target.name, reason)
    if failure is not None and failure.reason != "out_of_schedule":
        raise ProbeError(FRAMEWORK_REASON[failure.reason], f"{failure.reason}: {failure}", r)
    return r


RUNTIME: KindRuntime[FixTarget, FixState] = KindRuntime(probe, FixState)
