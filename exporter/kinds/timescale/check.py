"""Run every statement of :mod:`.sql` against a database and report.

For checking the statements against a real TimescaleDB (for example the
``timescale/timescaledb`` image under docker-compose, or the stack's PGlite build)
after an upgrade::

    PGPASSWORD=... python -m exporter.kinds.timescale.check postgresql://user@host:5432/db

Prints one line per statement (``ok``, ``skipped: why`` or ``FAILED: error``) and
exits 1 if any failed. The password comes from the environment, never argv.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import asyncpg

from . import sql as SQL

Outcome = tuple[str, str]
"""(statement name, "ok" | "skipped: ..." | "FAILED: ...")"""


async def _run(conn: Any, name: str, sql: str, *args: object) -> tuple[Outcome, list[Any]]:
    try:
        rows = await conn.fetch(sql, *args)
    except asyncpg.PostgresError as exc:
        return (name, f"FAILED: {type(exc).__name__}: {exc}"), []
    return (name, "ok"), list(rows)


async def check(conn: Any) -> list[Outcome]:
    """Every statement the probe can send, on one connection."""
    out: list[Outcome] = []
    for name, sql in (("ROUNDTRIP", SQL.ROUNDTRIP), ("ACTIVITY", SQL.ACTIVITY)):
        out.append((await _run(conn, name, sql))[0])
    outcome, rows = await _run(conn, "SERVER", SQL.SERVER)
    out.append(outcome)
    if not rows:
        return out
    server = rows[0]
    primary = ("PRIMARY_REPLICATION", SQL.PRIMARY_REPLICATION)
    standby = ("STANDBY_REPLICATION", SQL.STANDBY_REPLICATION)
    run, skip = (standby, primary) if server["in_recovery"] else (primary, standby)
    out.append((await _run(conn, *run))[0])
    out.append((skip[0], "skipped: not asked of a " + ("standby" if run is standby else "primary")))
    out.append((await _run(conn, "newest_row", SQL.newest_row("pg_catalog", "pg_class", "oid")))[0])
    if server["extension_version"] is None:
        out += [(n, "skipped: timescaledb is not installed") for n in ("HYPERTABLES", "JOBS")]
        return out
    hypertables = SQL.hypertables(server["extension_schema"])
    out.append((await _run(conn, "HYPERTABLES", hypertables, 10))[0])
    out.append((await _run(conn, "JOBS", SQL.JOBS, 10))[0])
    return out


async def _main(dsn: str) -> int:
    # unnamed statements: each runs once, and named ones collide where clients share
    # a server session (PgBouncer in transaction mode, PGlite)
    conn = await asyncpg.connect(dsn, timeout=10, command_timeout=30, statement_cache_size=0)
    try:
        outcomes = await check(conn)
    finally:
        try:
            await conn.close(timeout=5)
        except (TimeoutError, OSError, asyncpg.InterfaceError):
            conn.terminate()  # a server that does not hang up after Terminate
    for name, result in outcomes:
        print(f"{name:22} {result}")
    return 1 if any(r.startswith("FAILED") for _, r in outcomes) else 0


if __name__ == "__main__":  # pragma: no cover - a command-line tool
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(asyncio.run(_main(sys.argv[1])))
