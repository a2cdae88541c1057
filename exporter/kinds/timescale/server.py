"""The server's health: identity and counters, sessions and long transactions, and
replication (the primary's replicas and slots, or a standby's replay)."""

from __future__ import annotations

from typing import Any

import asyncpg

from ...probe import ProbeError, ProbeResult
from . import metrics as M
from . import sql as SQL

_STATES = {
    "active": "active",
    "idle": "idle",
    "idle in transaction": "idle_in_transaction",
    "idle in transaction (aborted)": "idle_in_transaction_aborted",
    "fastpath function call": "fastpath",
    "disabled": "disabled",
    "unknown": "unknown",
}
"""``pg_stat_activity.state`` -> the ``state`` label; anything else is ``unknown``."""


async def server(r: ProbeResult, name: str, conn: Any) -> asyncpg.Record:
    """Version, extension, recovery, limits, size and the database's counters; returns
    the row (the run asks for replication and the extension's views by it)."""
    row = await conn.fetchrow(SQL.SERVER)
    if row is None:
        raise ProbeError("protocol", "the server reported no row for the current database")
    r.add(M.INFO, 1, name, row["server_version"], row["extension_version"] or "")
    r.add(M.EXTENSION_INSTALLED, row["extension_version"] is not None, name)
    r.add(M.START_TIME, row["start_time"], name)
    r.add(M.IN_RECOVERY, row["in_recovery"], name)
    r.add(M.MAX_CONNECTIONS, row["max_connections"], name)
    r.add(M.RESERVED_CONNECTIONS, row["reserved_connections"], name)
    r.add(M.DATABASE_SIZE, row["database_size"], name)
    r.add(M.XID_AGE, row["xid_age"], name)
    r.add(M.COMMITS, row["xact_commit"], name)
    r.add(M.ROLLBACKS, row["xact_rollback"], name)
    r.add(M.DEADLOCKS, row["deadlocks"], name)
    r.add(M.CONFLICTS, row["conflicts"], name)
    return row


async def activity(r: ProbeResult, name: str, conn: Any) -> None:
    """Sessions by state, and the oldest transaction (and idle one) in seconds."""
    counts = dict.fromkeys(_STATES.values(), 0)
    oldest = idle_oldest = 0.0
    for row in await conn.fetch(SQL.ACTIVITY):
        state = _STATES.get(row["state"], "unknown")
        counts[state] += row["connections"]
        age = row["oldest_xact"] or 0.0
        oldest = max(oldest, age)
        if state.startswith("idle_in_transaction"):
            idle_oldest = max(idle_oldest, age)
    for state, count in counts.items():
        r.add(M.CONNECTIONS, count, name, state)
    r.add(M.OLDEST_TRANSACTION, oldest, name)
    r.add(M.OLDEST_IDLE_IN_TRANSACTION, idle_oldest, name)


async def replication(r: ProbeResult, name: str, conn: Any, in_recovery: bool) -> None:
    """A standby's replay, or a primary's replicas and replication slots."""
    if in_recovery:
        row = await conn.fetchrow(SQL.STANDBY_REPLICATION)
        r.add(M.STANDBY_LAST_REPLAY, row["last_replay"], name)
        r.add(M.STANDBY_REPLAY_LAG, row["replay_lag"], name)
        r.add(M.STANDBY_REPLAY_LAG_BYTES, row["replay_lag_bytes"], name)
        r.add(M.STANDBY_RECEIVER_STREAMING, row["receiver_streaming"] > 0, name)
        return
    row = await conn.fetchrow(SQL.PRIMARY_REPLICATION)
    r.add(M.REPLICAS, row["replicas"], name)
    r.add(M.REPLICAS_STREAMING, row["streaming"], name)
    r.add(M.PRIMARY_REPLAY_LAG, row["max_replay_lag"], name)
    r.add(M.PRIMARY_REPLAY_LAG_BYTES, row["max_replay_lag_bytes"], name)
    r.add(M.INACTIVE_SLOTS, row["inactive_slots"], name)
    r.add(M.SLOT_RETAINED_BYTES, row["max_slot_retained_bytes"], name)
