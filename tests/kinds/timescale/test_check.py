"""The statement checker against the stack's real TimescaleDB (PGlite) and its
plain PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg

from exporter.kinds.timescale.check import check
from stack import Postgres, TimescaleLite

from ...fixtures_timescale import lite_sql


async def test_every_statement_runs_on_timescaledb(timescale_lite: TimescaleLite) -> None:
    """Against the real extension (TimescaleDB 2.23 in the stack's PGlite), with a
    hypertable and a policy job so that the views have rows to join."""
    lite = timescale_lite
    await lite_sql(
        lite,
        "CREATE SCHEMA ts_check;"
        " CREATE TABLE ts_check.ticks (time timestamptz NOT NULL);"
        " SELECT create_hypertable('ts_check.ticks', 'time');"
        " INSERT INTO ts_check.ticks VALUES (now());"
        " SELECT add_retention_policy('ts_check.ticks', interval '7 days');",
    )
    conn = await asyncpg.connect(lite.dsn(), ssl=False, statement_cache_size=0)
    try:
        outcomes = dict(await check(conn))
    finally:
        await conn.close()
    assert outcomes == {
        "ROUNDTRIP": "ok",
        "ACTIVITY": "ok",
        "SERVER": "ok",
        "PRIMARY_REPLICATION": "ok",
        "STANDBY_REPLICATION": "skipped: not asked of a primary",
        "newest_row": "ok",
        "HYPERTABLES": "ok",
        "JOBS": "ok",
    }


async def test_command_line_where_clients_share_a_session(timescale_lite: TimescaleLite) -> None:
    """PGlite's one backend keeps what earlier clients prepared (so does a server
    connection behind PgBouncer in transaction mode): the command line's statements
    are unnamed, so the names asyncpg would give them in a new process are free or
    not, it does not matter."""
    lite = timescale_lite
    names = (f"__asyncpg_stmt_{n:x}__" for n in range(1, 100))
    await lite_sql(lite, "".join(f'PREPARE "{name}" AS SELECT 1;' for name in names))
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "exporter.kinds.timescale.check",
            lite.dsn().replace(f":{lite.password}@", "@"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PGPASSWORD": lite.password, "PGSSLMODE": "disable"},
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await lite_sql(lite, "DEALLOCATE ALL")
    text = out.decode()
    assert proc.returncode == 0, text
    lines = dict(line.split(None, 1) for line in text.splitlines())
    assert lines["HYPERTABLES"] == "ok" and lines["JOBS"] == "ok"


def test_command_line_on_plain_postgresql(postgres_server: Postgres) -> None:
    pg = postgres_server
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter.kinds.timescale.check",
            pg.dsn().replace(f":{pg.password}@", "@"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PGPASSWORD": pg.password},
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = dict(line.split(None, 1) for line in out.stdout.splitlines())
    assert lines["SERVER"] == "ok"
    assert lines["HYPERTABLES"] == "skipped: timescaledb is not installed"
    assert "FAILED" not in out.stdout
