"""The server's health against the stack's real PostgreSQL: transaction and
deadlock counters, and replication seen from a primary and a real standby.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from stack import Postgres

from ...fixtures_timescale import (
    Factory,
    Standby,
    T,
    create_database,
    db_config,
    errors,
    holds,
    stat_database,
    up,
)
from ...helpers import Running, Series, eventually, scrape_until, service_root, value


async def test_commits_rollbacks_and_deadlocks_are_counted(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    pg = postgres_server
    create_database(pg, "ts_counters")
    pg.psql(
        "CREATE TABLE acct (id int PRIMARY KEY, n int); INSERT INTO acct VALUES (1, 0), (2, 0)",
        "ts_counters",
    )
    run: Running = await exporter_factory(db_config(pg, "ts_counters"))
    m = await scrape_until(run, lambda m: up(m) == 1)
    rollbacks0 = value(m, "tradeops_timescale_transactions_rolled_back_total", **T) or 0
    assert value(m, "tradeops_timescale_deadlocks_total", **T) == 0
    a = await asyncpg.connect(pg.dsn("ts_counters"))
    b = await asyncpg.connect(pg.dsn("ts_counters"))
    try:
        await _deadlock(a, b)
    finally:
        await a.close()
        await b.close()
    m = await scrape_until(
        run, lambda m: value(m, "tradeops_timescale_deadlocks_total", **T) == 1, timeout=10
    )
    # the deadlock victim's transaction and the explicit ROLLBACKs
    assert (value(m, "tradeops_timescale_transactions_rolled_back_total", **T) or 0) > rollbacks0
    # a primary has no recovery conflicts; the series is there and says what the server says
    assert value(m, "tradeops_timescale_recovery_conflicts_total", **T) == 0
    assert stat_database(pg, "ts_counters", "conflicts") == 0

    commits = "tradeops_timescale_transactions_committed_total"
    before = value(m, commits, **T)
    assert before is not None
    base = stat_database(pg, "ts_counters", "xact_commit")
    conn = await asyncpg.connect(pg.dsn("ts_counters"))
    try:
        for i in range(40):
            await conn.execute("UPDATE acct SET n = $1 WHERE id = 1", i)  # a transaction each
    finally:
        await conn.close()  # the backend flushes its statistics as it exits

    async def flushed() -> bool:
        return stat_database(pg, "ts_counters", "xact_commit") >= base + 40

    await eventually(flushed, timeout=5)
    # the server's count holds the 40 (and the exporter's own queries so far)
    floor = stat_database(pg, "ts_counters", "xact_commit")
    m = await scrape_until(run, lambda m: (value(m, commits, **T) or 0) >= floor, timeout=10)
    ceiling = stat_database(pg, "ts_counters", "xact_commit")
    got = value(m, commits, **T)
    assert got is not None and floor <= got <= ceiling
    assert got - before >= 40


async def _deadlock(a: asyncpg.Connection, b: asyncpg.Connection) -> None:
    """Two sessions lock rows 1 and 2 in opposite orders; PostgreSQL kills one."""
    await a.execute("BEGIN; UPDATE acct SET n = n + 1 WHERE id = 1")
    await b.execute("BEGIN; UPDATE acct SET n = n + 1 WHERE id = 2")
    results = await asyncio.gather(
        a.execute("UPDATE acct SET n = n + 1 WHERE id = 2"),
        b.execute("UPDATE acct SET n = n + 1 WHERE id = 1"),
        return_exceptions=True,
    )
    assert any(isinstance(r, asyncpg.DeadlockDetectedError) for r in results), results
    for conn in (a, b):
        await conn.execute("ROLLBACK")


@pytest.fixture
def standby_root() -> Iterator[Path]:
    """Where the standby lives (see ``service_root``)."""
    with service_root("ts-standby") as root:
        yield root


def _pair_config(primary: Postgres, standby: Postgres) -> str:
    """Targets ``primary`` and ``standby``, probed every 500 ms."""
    return f"""
timescale:
  - {{name: primary, address: "{primary.address}", database: postgres, user: postgres,
      password: "${{TS_TEST_PASSWORD}}", sslmode: disable, interval: 500ms, timeout: 400ms}}
  - {{name: standby, address: "{standby.address}", database: postgres, user: postgres,
      password: "${{TS_TEST_PASSWORD}}", sslmode: disable, interval: 500ms, timeout: 400ms}}
"""


async def test_primary_and_standby_report_replication(
    own_postgres: Postgres,
    exporter_factory: Factory,
    monkeypatch: pytest.MonkeyPatch,
    standby_root: Path,
) -> None:
    """A real streaming standby cloned from this module's cluster with pg_basebackup."""
    primary = own_postgres
    monkeypatch.setenv("TS_TEST_PASSWORD", primary.password)
    primary.psql("SELECT pg_create_physical_replication_slot('parked', true)")
    standby = Standby(standby_root, primary).start()
    try:
        run: Running = await exporter_factory(_pair_config(primary, standby))
        p, s = {"target": "primary"}, {"target": "standby"}
        await eventually(
            holds(
                run,
                lambda m: (
                    value(m, "tradeops_timescale_replicas_streaming", **p) == 1
                    and value(m, "tradeops_timescale_standby_wal_receiver_streaming", **s) == 1
                ),
            ),
            timeout=15,
        )
        committed = float(
            primary.psql(
                "CREATE TABLE IF NOT EXISTS beat (t timestamptz);"
                " INSERT INTO beat VALUES (now()) RETURNING extract(epoch FROM t)"
            ).split()[-1]
        )

        def replayed(m: Series) -> bool:  # and the primary's last run succeeded too
            last = value(m, "tradeops_timescale_standby_last_replay_timestamp_seconds", **s)
            primary_up = value(m, "tradeops_up", kind="timescale", **p) == 1
            return last is not None and last >= committed - 0.001 and primary_up

        m = await scrape_until(run, replayed, timeout=10)
        assert value(m, "tradeops_timescale_in_recovery", **p) == 0
        assert value(m, "tradeops_timescale_in_recovery", **s) == 1
        assert value(m, "tradeops_timescale_replicas_connected", **p) == 1
        assert (value(m, "tradeops_timescale_replica_max_replay_lag_bytes", **p) or 0) >= 0
        assert value(m, "tradeops_timescale_replication_slots_inactive", **p) == 1
        assert (value(m, "tradeops_timescale_replication_slot_max_retained_bytes", **p) or 0) > 0
        lag = value(m, "tradeops_timescale_standby_replay_lag_seconds", **s)
        assert lag is not None and 0 <= lag < 10
        assert value(m, "tradeops_timescale_standby_replay_lag_bytes", **s) is not None
        # the primary's views are not asked on a standby, nor the standby's on a primary
        assert value(m, "tradeops_timescale_replicas_connected", **s) is None
        assert value(m, "tradeops_timescale_standby_replay_lag_seconds", **p) is None
        assert errors(m, "other") == 0 and errors(m, "protocol") == 0
        # a standby counts the queries that recovery cancelled: none here, on either side
        for target, server in ((p, primary), (s, standby)):
            conflicts = value(m, "tradeops_timescale_recovery_conflicts_total", **target)
            assert conflicts == stat_database(server, "postgres", "conflicts") == 0
    finally:
        standby.stop()
        primary.psql("SELECT pg_drop_replication_slot('parked')")
