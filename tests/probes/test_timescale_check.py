"""The statement checker (for real TimescaleDB) against the stack's PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg

from exporter.probes.timescale_check import check
from stack import Postgres

from ..fixtures_timescale import create_database, install_mirror


async def test_every_statement_runs_on_the_mirror(postgres_server: Postgres) -> None:
    """Against the timescaledb_information mirror (see fixtures_timescale): the
    extension cannot be installed here, so this proves the statements parse and
    match the mirrored columns, not the real views."""
    pg = postgres_server
    create_database(pg, "ts_check")
    install_mirror(pg, "ts_check", "postgres")
    conn = await asyncpg.connect(pg.dsn("ts_check"))
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


def test_command_line_on_plain_postgresql(postgres_server: Postgres) -> None:
    pg = postgres_server
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter.probes.timescale_check",
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
