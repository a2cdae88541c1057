"""TimescaleDB/PostgreSQL: round trip, identity, connections, recovery and
replication lag, long transactions, size and counters; per watched table the
newest row's timestamp (ingest freshness); and, where the timescaledb
extension is installed, hypertable chunk counts and sizes and background jobs.

The statements live in :mod:`.sql`, the connections in :mod:`.client`. A run is
one read-only transaction that sets its own limits (``SET LOCAL``), so that it
works through PgBouncer in session and transaction pooling.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import asyncpg

from ...probe import KindRuntime, ProbeContext, ProbeResult
from . import extension, freshness, server
from . import metrics as M
from . import sql as SQL
from .client import Connections, classify
from .config import TimescaleTarget
from .framing import not_postgres


class TimescaleState(Connections):
    """The target's connections (:class:`.client.Connections`), the statements that
    open a run's transaction, and which watched tables are asked alone."""

    def __init__(self, target: TimescaleTarget) -> None:
        super().__init__(target)
        limits = (
            max(1, round(target.statement_timeout_s * 1000)),
            max(1, round(target.lock_timeout_s * 1000)),
            max(1, round(target.timeout_s * 1000)),
        )
        self.begin = SQL.begin(*limits)
        """Opens a run's transaction (:func:`.sql.begin`)."""
        self.restart = SQL.begin(*limits, after_failure=True)
        """Ends an aborted (or left over) transaction and opens a new one."""
        self.isolated: dict[str, bool] = {}
        """Tables queried one by one since their batch hit statement_timeout; True
        once a query of the table alone hit it too."""


async def _begin(r: ProbeResult, name: str, conn: Any, state: TimescaleState) -> None:
    """Open the run's transaction with ``SELECT 1`` in the same simple query: one round
    trip in every mode (no statement prepared), timed as ``query_roundtrip_seconds``."""
    # already in a transaction: PGlite's one session, after a client that went away
    # in the middle of one (a server ends the transaction of a client gone)
    opening = state.restart if conn.is_in_transaction() else state.begin
    start = time.perf_counter()
    await conn.execute(f"{opening}; {SQL.ROUNDTRIP}")
    r.add(M.ROUNDTRIP, time.perf_counter() - start, name)


async def _collect(
    target: TimescaleTarget, conn: Any, ctx: ProbeContext[TimescaleState]
) -> ProbeResult:
    r = ProbeResult()
    await _begin(r, target.name, conn, ctx.state)
    row = await server.server(r, target.name, conn)
    await server.activity(r, target.name, conn)
    await server.replication(r, target.name, conn, bool(row["in_recovery"]))
    await freshness.tables(r, target, conn, ctx)
    if row["extension_version"] is not None:
        await extension.hypertables(r, target, conn, row["extension_schema"])
        await extension.jobs(r, target, conn)
    await conn.execute(SQL.COMMIT)
    return r


async def probe(target: TimescaleTarget, ctx: ProbeContext[TimescaleState]) -> ProbeResult:
    """Probe one database on a pooled connection (or one of its own)."""
    try:
        conn = await ctx.state.acquire_for_run(ctx.deadline)
    except Exception as exc:
        if named := not_postgres(exc):
            raise named from exc
        raise
    try:
        return await _collect(target, conn, ctx)
    except BaseException as exc:
        # a cancelled or failed run leaves no half-done protocol state; a connection
        # already lost was handed back to the pool by asyncpg, and says so
        with contextlib.suppress(asyncpg.InterfaceError):
            conn.terminate()
        if isinstance(exc, Exception) and (named := not_postgres(exc)):
            raise named from exc
        raise
    finally:
        await ctx.state.release(conn, ctx.deadline)


RUNTIME: KindRuntime[TimescaleTarget, TimescaleState] = KindRuntime(probe, TimescaleState, classify)
