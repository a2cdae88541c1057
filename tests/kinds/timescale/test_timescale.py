"""TimescaleDB/PostgreSQL probe against the stack's real PostgreSQL, the kind as a
whole: the documented role's view, the ``/probe`` module, and what a run at the
probe's limits receives against the default budget.

Each test makes its own database in the session's cluster; the tests of one module
are beside it (test_client.py, test_server.py, test_freshness.py, test_extension.py).
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from exporter.budget import format_size
from exporter.kinds.timescale import KIND as TIMESCALE
from exporter.kinds.timescale.config import TimescaleTarget
from exporter.kinds.timescale.probe import TimescaleState
from exporter.scheduler import run_probe
from stack import Postgres

from ...fixtures_timescale import (
    DOCS_DATABASE,
    MONITOR_ROLE,
    Factory,
    T,
    create_database,
    create_monitor_role,
    db_config,
    errors,
    holds,
    install_mirror,
    up,
)
from ...helpers import Running, Series, eventually, parse, report, scrape_until, value, with_label


async def test_documented_role_sees_server_health(
    postgres_server: Postgres, exporter_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The role built from the docs' GRANTs, verbatim, gets every health series."""
    pg = postgres_server
    monkeypatch.setenv("TS_MONITOR_PASSWORD", create_monitor_role(pg))
    pg.psql(
        "INSERT INTO market.ticks VALUES (now() - interval '5 seconds', 'EURUSD', 1.1)",
        "marketdata",
    )
    holder = await asyncpg.connect(pg.dsn(DOCS_DATABASE))
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT txid_current()")  # idle in transaction from here on
        await _rollback_one(pg)
        run: Running = await exporter_factory(
            db_config(
                pg,
                DOCS_DATABASE,
                user=MONITOR_ROLE,
                password_env="TS_MONITOR_PASSWORD",
                tables="      - {name: ticks, schema: market, table: ticks, freshness_sla: 60s}",
            )
        )
        await eventually(holds(run, lambda m: up(m) == 1), timeout=10)
        await asyncio.sleep(1.2)

        def aged(m: Series) -> bool:
            oldest = value(m, "tradeops_timescale_oldest_transaction_seconds", **T) or 0
            idle = value(m, "tradeops_timescale_oldest_idle_in_transaction_seconds", **T) or 0
            return oldest >= 1 and idle >= 1

        m = await scrape_until(run, aged, timeout=10)
    finally:
        await holder.close()
    version = pg.psql("SHOW server_version").strip()
    assert (
        value(m, "tradeops_timescale_info", **T, server_version=version, extension_version="") == 1
    )
    assert value(m, "tradeops_timescale_extension_installed", **T) == 0
    assert with_label(m, "tradeops_timescale_hypertable_chunks") == {}
    assert with_label(m, "tradeops_timescale_job_runs_total") == {}
    assert value(m, "tradeops_timescale_max_connections", **T) == 100
    assert value(m, "tradeops_timescale_reserved_connections", **T) == 3
    assert (value(m, "tradeops_timescale_connections", **T, state="idle_in_transaction") or 0) >= 1
    assert value(m, "tradeops_timescale_connections", **T, state="unknown") == 0  # pg_monitor
    assert (value(m, "tradeops_timescale_oldest_idle_in_transaction_seconds", **T) or 0) >= 1
    assert value(m, "tradeops_timescale_in_recovery", **T) == 0
    assert value(m, "tradeops_timescale_replicas_connected", **T) == 0
    assert value(m, "tradeops_timescale_replica_max_replay_lag_seconds", **T) is None
    assert (value(m, "tradeops_timescale_database_size_bytes", **T) or 0) > 1_000_000
    assert 0 < (value(m, "tradeops_timescale_query_roundtrip_seconds", **T) or 0) < 0.5
    assert 0 < (value(m, "tradeops_timescale_database_xid_age", **T) or 0) < 2**31
    start = float(pg.psql("SELECT extract(epoch FROM pg_postmaster_start_time())"))
    assert value(m, "tradeops_timescale_start_time_seconds", **T) == pytest.approx(start)
    newest = value(m, "tradeops_timescale_table_newest_row_timestamp_seconds", **T, table="ticks")
    assert newest is not None and abs(time.time() - 5 - newest) < 3
    assert value(m, "tradeops_timescale_table_within_sla", **T, table="ticks") == 1
    sla = "tradeops_timescale_table_freshness_sla_seconds"
    assert value(m, sla, **T, table="ticks", calendar="always") == 60
    assert errors(m, "auth") == 0 and errors(m, "protocol") == 0


async def _rollback_one(pg: Postgres) -> None:
    conn = await asyncpg.connect(pg.dsn(DOCS_DATABASE))
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT 1")
        await tx.rollback()
    finally:
        await conn.close()


async def test_on_demand_probe_module(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    """/probe runs the probe once with a pool of its own, closed after the request."""
    pg = postgres_server
    run: Running = await exporter_factory(
        """
modules:
  pg:
    kind: timescale
    allowed_targets: ['127\\.0\\.0\\.1:\\d+']
    timeout: 2s
    params: {database: postgres, user: postgres, password: "${TS_TEST_PASSWORD}",
             sslmode: disable}
"""
    )
    status, body, _ = await run.get(f"/probe?module=pg&target={pg.address}")
    assert status == 200, body
    m = parse(body)
    assert value(m, "tradeops_probe_success", kind="timescale", target=pg.address) == 1
    assert value(m, "tradeops_timescale_extension_installed", target=pg.address) == 0
    assert superuser_password not in body

    async def closed() -> bool:  # the server notices the client's Terminate promptly
        sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tradeops-exporter'"
        return int(pg.psql(sql)) == 0

    await eventually(closed, timeout=5, step=0.2)


def _fill_to_the_limits(pg: Postgres, database: str) -> list[dict[str, str]]:
    """500 hypertables and 500 jobs on the mirror, and 1000 tables with a row each,
    names near PostgreSQL's 63-byte maximum; returns the tables to watch."""
    long = "h" * 58  # + a 4-digit number: 62 bytes (a table's array type adds one)
    pg.psql(
        f"""
        CREATE SCHEMA {"s" * 63};
        DO $$ BEGIN FOR i IN 1000..1999 LOOP
          EXECUTE format('CREATE TABLE {"s" * 63}.%I (time timestamptz)', '{long}' || i);
          EXECUTE format('INSERT INTO {"s" * 63}.%I VALUES (now())', '{long}' || i);
        END LOOP; END $$;
        INSERT INTO timescaledb_information.hypertables
          SELECT '{"s" * 63}', '{long}' || g, 'postgres', 1, 10000, true, NULL
            FROM generate_series(1000, 1499) g;
        INSERT INTO timescaledb_information.jobs (job_id, application_name, proc_schema,
            proc_name, scheduled, next_start, hypertable_schema, hypertable_name)
          SELECT g, 'Compression Policy [' || g || ']', '_timescaledb_functions',
                 'policy_compression', true, now(), '{"s" * 63}', '{long}' || g
            FROM generate_series(1000, 1499) g;
        INSERT INTO timescaledb_information.job_stats
          SELECT '{"s" * 63}', '{long}' || g, g, now(), now(), 'Success', 'Scheduled',
                 '1 second', now(), 1000000, 999999, 1
            FROM generate_series(1000, 1499) g;
        """,
        database,
    )
    return [{"name": f"t{i}", "schema": "s" * 63, "table": f"{long}{i}"} for i in range(1000, 2000)]


async def test_a_large_catalogue_stays_well_within_the_default_budget(
    postgres_server: Postgres, superuser_password: str
) -> None:
    """What a run receives with the probe's limits full (500 hypertables, 500 jobs, on
    the mirror) and 1000 watched tables, names near PostgreSQL's 63-byte maximum: the
    kind's default response_budget leaves room for four times as much. The first run
    on a fresh pool is the largest (startup, statement preparation)."""
    pg = postgres_server
    create_database(pg, "ts_budget")
    install_mirror(pg, "ts_budget", "postgres")
    tables = _fill_to_the_limits(pg, "ts_budget")
    target = TimescaleTarget.model_validate(
        {
            "name": "db",
            "address": pg.address,
            "database": "ts_budget",
            "user": "postgres",
            "password": "${TS_TEST_PASSWORD}",
            "sslmode": "disable",
            "interval": 10.0,
            "timeout": 8.0,
            "tables": tables,
        }
    )
    state = TimescaleState(target)
    try:
        used = []
        for _ in range(2):
            outcome = await run_probe(TIMESCALE, target, state, target.timeout_s)
            assert outcome.ok, outcome.error
            used.append(state.budget.used)
        hypertables = [s for s in outcome.samples if s.family.name.endswith("hypertable_chunks")]
        assert len(hypertables) == 500
    finally:
        await state.aclose()
    report(
        f"timescale: a run on 500 hypertables, 500 jobs and 1000 watched tables received"
        f" {used[0] / 1024:.0f} KiB (first run), {used[1] / 1024:.0f} KiB (next);"
        f" default budget {format_size(TIMESCALE.response_budget)}"
    )
    assert max(used) * 4 <= TIMESCALE.response_budget
