"""TimescaleDB/PostgreSQL probe against the stack's real PostgreSQL.

Each test makes its own database in the session's cluster; the fault tests
stop and SIGSTOP a cluster of their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from exporter.budget import format_size
from exporter.kinds.timescale.probe import KIND as TIMESCALE
from exporter.kinds.timescale.probe import TimescaleState, TimescaleTarget
from exporter.scheduler import run_probe
from stack import Postgres

from ...fixtures_timescale import (
    DOCS_DATABASE,
    MIRROR_EXTENSION_VERSION,
    MONITOR_ROLE,
    Standby,
    create_database,
    create_monitor_role,
    install_mirror,
)
from ...helpers import (
    Running,
    Series,
    eventually,
    parse,
    report,
    scrape_until,
    service_root,
    value,
    with_label,
)

Factory = Callable[..., Any]
KIND = {"kind": "timescale", "target": "db"}
T = {"target": "db"}


def _config(
    pg: Postgres,
    database: str,
    *,
    user: str = "postgres",
    password_env: str = "TS_TEST_PASSWORD",
    tables: str = "",
    interval: str = "1s",
    timeout: str = "600ms",
) -> str:
    return f"""
timescale:
  - name: db
    address: {pg.address}
    database: {database}
    user: {user}
    password: ${{{password_env}}}
    sslmode: disable
    interval: {interval}
    timeout: {timeout}
    tables:
{tables or "      []"}
"""


def _check(run: Running, pred: Callable[[Series], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return pred(await run.scrape())

    return check


def _errors(m: Series, reason: str) -> float:
    return value(m, "tradeops_probe_errors_total", **KIND, reason=reason) or 0.0


def _up(m: Series) -> float | None:
    return value(m, "tradeops_up", **KIND)


@pytest.fixture
def superuser_password(postgres_server: Postgres, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TS_TEST_PASSWORD", postgres_server.password)
    return postgres_server.password


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
            _config(
                pg,
                DOCS_DATABASE,
                user=MONITOR_ROLE,
                password_env="TS_MONITOR_PASSWORD",
                tables="      - {name: ticks, schema: market, table: ticks, freshness_sla: 60s}",
            )
        )
        await eventually(_check(run, lambda m: _up(m) == 1), timeout=10)
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
    assert _errors(m, "auth") == 0 and _errors(m, "protocol") == 0


async def _rollback_one(pg: Postgres) -> None:
    conn = await asyncpg.connect(pg.dsn(DOCS_DATABASE))
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("SELECT 1")
        await tx.rollback()
    finally:
        await conn.close()


async def test_commits_rollbacks_and_deadlocks_are_counted(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    pg = postgres_server
    create_database(pg, "ts_counters")
    pg.psql(
        "CREATE TABLE acct (id int PRIMARY KEY, n int); INSERT INTO acct VALUES (1, 0), (2, 0)",
        "ts_counters",
    )
    run: Running = await exporter_factory(_config(pg, "ts_counters"))
    m = await scrape_until(run, lambda m: _up(m) == 1)
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
    assert _stat_database(pg, "ts_counters", "conflicts") == 0

    commits = "tradeops_timescale_transactions_committed_total"
    before = value(m, commits, **T)
    assert before is not None
    base = _stat_database(pg, "ts_counters", "xact_commit")
    conn = await asyncpg.connect(pg.dsn("ts_counters"))
    try:
        for i in range(40):
            await conn.execute("UPDATE acct SET n = $1 WHERE id = 1", i)  # a transaction each
    finally:
        await conn.close()  # the backend flushes its statistics as it exits

    async def flushed() -> bool:
        return _stat_database(pg, "ts_counters", "xact_commit") >= base + 40

    await eventually(flushed, timeout=5)
    # the server's count holds the 40 (and the exporter's own queries so far)
    floor = _stat_database(pg, "ts_counters", "xact_commit")
    m = await scrape_until(run, lambda m: (value(m, commits, **T) or 0) >= floor, timeout=10)
    ceiling = _stat_database(pg, "ts_counters", "xact_commit")
    got = value(m, commits, **T)
    assert got is not None and floor <= got <= ceiling
    assert got - before >= 40


def _stat_database(pg: Postgres, database: str, column: str) -> float:
    """One counter of ``pg_stat_database``, read by psql in a session of its own."""
    return float(
        pg.psql(f"SELECT {column} FROM pg_stat_database WHERE datname = '{database}'").strip()
    )


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


async def test_freshness_follows_inserts_and_goes_stale(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    pg = postgres_server
    create_database(pg, "ts_fresh")
    pg.psql(
        "CREATE TABLE ticks (time timestamptz NOT NULL, price float8);"
        " CREATE INDEX ON ticks (time)",
        "ts_fresh",
    )
    run: Running = await exporter_factory(
        _config(
            pg,
            "ts_fresh",
            tables="      - {name: ticks, table: ticks, freshness_sla: 2s}",
            interval="500ms",
            timeout="400ms",
        )
    )

    def newest(m: Series) -> float | None:
        return value(m, "tradeops_timescale_table_newest_row_timestamp_seconds", **T, table="ticks")

    m = await scrape_until(run, lambda m: _up(m) == 1)
    assert value(m, "tradeops_timescale_table_has_rows", **T, table="ticks") == 0
    assert newest(m) is None
    assert value(m, "tradeops_timescale_table_within_sla", **T, table="ticks") == 0

    first = float(
        pg.psql(
            "INSERT INTO ticks VALUES (now(), 1.0) RETURNING extract(epoch FROM time)", "ts_fresh"
        )
    )
    m = await scrape_until(run, lambda m: newest(m) == pytest.approx(first), timeout=5)
    assert value(m, "tradeops_timescale_table_within_sla", **T, table="ticks") == 1
    assert value(m, "tradeops_timescale_table_has_rows", **T, table="ticks") == 1

    await asyncio.sleep(0.6)
    second = float(
        pg.psql(
            "INSERT INTO ticks VALUES (now(), 2.0) RETURNING extract(epoch FROM time)", "ts_fresh"
        )
    )
    assert second > first
    await eventually(_check(run, lambda m: newest(m) == pytest.approx(second)), timeout=5)

    # writes stop: the timestamp holds still and the SLA flag drops once it is 2 s old
    m = await scrape_until(
        run,
        lambda m: value(m, "tradeops_timescale_table_within_sla", **T, table="ticks") == 0,
        timeout=10,
    )
    assert newest(m) == pytest.approx(second)
    assert time.time() - second >= 2


async def test_freshness_sla_defaults_and_the_resolved_calendar(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    pg = postgres_server
    create_database(pg, "ts_sla")
    pg.psql(
        "CREATE TABLE ticks (time timestamptz NOT NULL);"
        " CREATE TABLE quotes (time timestamptz NOT NULL);"
        " INSERT INTO ticks VALUES (now() - interval '10 minutes');"
        " INSERT INTO quotes VALUES (now() - interval '10 minutes')",
        "ts_sla",
    )
    tables = """      - {name: ticks, table: ticks}
      - {name: quotes, table: quotes, freshness_sla: 1h, calendar: always}
      - {name: gone, table: no_such_table, calendar: xlon}"""
    config = _config(pg, "ts_sla", tables=tables).replace(
        "    sslmode: disable\n", "    sslmode: disable\n    calendar: xnys\n"
    )
    calendars = "calendars:\n  - {name: xnys, exchange: XNYS}\n  - {name: xlon, exchange: XLON}\n"
    run: Running = await exporter_factory(calendars + config)
    m = await scrape_until(run, lambda m: _up(m) == 1)
    assert with_label(m, "tradeops_timescale_table_freshness_sla_seconds") == {
        # the 300 s default, under the target's calendar
        frozenset({("target", "db"), ("table", "ticks"), ("calendar", "xnys")}): 300,
        frozenset({("target", "db"), ("table", "quotes"), ("calendar", "always")}): 3600,
        # a table whose query fails keeps its threshold
        frozenset({("target", "db"), ("table", "gone"), ("calendar", "xlon")}): 300,
    }
    # within_sla is there for every table that answered, SLA configured or not
    assert value(m, "tradeops_timescale_table_within_sla", **T, table="ticks") == 0
    assert value(m, "tradeops_timescale_table_within_sla", **T, table="quotes") == 1
    assert value(m, "tradeops_timescale_table_query_success", **T, table="gone") == 0
    assert value(m, "tradeops_timescale_table_within_sla", **T, table="gone") is None


async def test_wrong_password_is_auth_and_never_shown(
    postgres_server: Postgres,
    exporter_factory: Factory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "Wr0ng-pa55word-" + postgres_server.password[::-1]
    monkeypatch.setenv("TS_WRONG_PASSWORD", wrong)
    caplog.set_level(logging.DEBUG)
    run: Running = await exporter_factory(
        _config(postgres_server, "postgres", password_env="TS_WRONG_PASSWORD")
    )
    await eventually(_check(run, lambda m: _errors(m, "auth") >= 1), timeout=5)
    _, body, _ = await run.get("/metrics")
    m = await run.scrape()
    assert _up(m) == 0
    assert _errors(m, "refused") == 0 and _errors(m, "other") == 0
    assert with_label(m, "tradeops_timescale_info") == {}
    assert wrong not in body
    assert any("auth" in str(getattr(r, "fields", "")) for r in caplog.records)
    for record in caplog.records:
        assert wrong not in record.getMessage()
        assert wrong not in str(getattr(record, "fields", ""))


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[Postgres]:
    """A cluster of this module's own, for tests that stop and hang it.

    It lives in a ``service_root``, so that it can restart however pytest runs.
    """
    with service_root("ts-faults") as root:
        server = Postgres(root).start()
        yield server
        server.stop()


async def test_stopped_server_is_refused_then_recovers(
    own_postgres: Postgres, exporter_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = own_postgres
    monkeypatch.setenv("TS_TEST_PASSWORD", pg.password)
    run: Running = await exporter_factory(_config(pg, "postgres"))
    await eventually(_check(run, lambda m: _up(m) == 1))
    pg.stop()
    try:
        # the first run after the stop may fail otherwise (its pooled connection is
        # cut); the next one, an interval later, is refused
        await eventually(_check(run, lambda m: _errors(m, "refused") >= 1), timeout=10)
        m = await run.scrape()
        assert _up(m) == 0
        assert with_label(m, "tradeops_timescale_connections") == {}
        assert value(m, "tradeops_probe_last_success_timestamp_seconds", **KIND) is not None
    finally:
        pg.start()
    await eventually(_check(run, lambda m: _up(m) == 1), timeout=10)
    assert with_label(await run.scrape(), "tradeops_timescale_connections") != {}


async def test_hung_server_times_out_at_the_deadline_then_recovers(
    own_postgres: Postgres, exporter_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = own_postgres
    monkeypatch.setenv("TS_TEST_PASSWORD", pg.password)
    run: Running = await exporter_factory(_config(pg, "postgres", interval="1s", timeout="500ms"))
    await eventually(_check(run, lambda m: _up(m) == 1))
    baseline_tasks = len(asyncio.all_tasks())
    pg.pause()
    try:
        # the first run hangs on a pooled connection, later ones while connecting
        await eventually(_check(run, lambda m: _errors(m, "timeout") >= 2), timeout=8)
        m = await run.scrape()
        assert _up(m) == 0
        duration = value(m, "tradeops_probe_duration_seconds", **KIND)
        assert duration is not None and 0.45 < duration < 0.9
        worst = 0.0
        for _ in range(20):
            start = time.perf_counter()
            await run.scrape()
            worst = max(worst, time.perf_counter() - start)
        assert worst < 0.1, f"/metrics took {worst:.3f}s while the database hangs"
    finally:
        pg.resume()
    await eventually(_check(run, lambda m: _up(m) == 1), timeout=10)
    await asyncio.sleep(0.5)
    assert len(asyncio.all_tasks()) <= baseline_tasks + 1, "tasks leaked by timed-out runs"


async def test_quoted_and_hostile_names_are_identifiers_not_sql(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    pg = postgres_server
    create_database(pg, "ts_names")
    pg.psql(
        '''
        CREATE SCHEMA "Odd ""Schema""";
        CREATE TABLE "Odd ""Schema"""."tick table; --" ("ti""me" timestamptz);
        CREATE INDEX ON "Odd ""Schema"""."tick table; --" ("ti""me");
        INSERT INTO "Odd ""Schema"""."tick table; --" VALUES ('2026-01-02 03:04:05+00'), (NULL);
        CREATE TABLE victim (id int);
        CREATE TABLE ms_ticks (ts_ms bigint);
        INSERT INTO ms_ticks VALUES (1767323045500);
        CREATE TABLE texty (t text);
        INSERT INTO texty VALUES ('yesterday');
        ''',
        "ts_names",
    )
    tables = """
      - name: odd
        schema: 'Odd "Schema"'
        table: 'tick table; --'
        time_column: 'ti"me'
      - name: hostile
        table: 'victim" ; DROP TABLE victim; --'
      - name: hostile_col
        table: victim
        time_column: 'id) FROM victim; DROP TABLE victim; --'
      - {name: millis, table: ms_ticks, time_column: ts_ms, time_unit: ms}
      - {name: texty, table: texty, time_column: t}
"""
    run: Running = await exporter_factory(_config(pg, "ts_names", tables=tables))
    m = await scrape_until(run, lambda m: _up(m) == 1)

    def ok(name: str) -> float | None:
        return value(m, "tradeops_timescale_table_query_success", **T, table=name)

    newest = "tradeops_timescale_table_newest_row_timestamp_seconds"
    assert ok("odd") == 1
    assert value(m, newest, **T, table="odd") == 1767323045.0  # the NULL row is skipped
    assert ok("millis") == 1
    assert value(m, newest, **T, table="millis") == pytest.approx(1767323045.5)
    assert ok("hostile") == 0 and ok("hostile_col") == 0 and ok("texty") == 0
    assert value(m, newest, **T, table="hostile") is None
    assert value(m, newest, **T, table="texty") is None
    assert pg.psql("SELECT count(*) FROM victim", "ts_names").strip() == "0"  # still there


async def test_job_states_only_the_mirror_can_show(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    """Hypertables, chunks, compression and job runs are tested on the real extension
    (test_timescale_real.py). Two job states it cannot produce run here against the
    mirror of the ``timescaledb_information`` views (tests/fixtures_timescale.py): a
    job the scheduler is running (PGlite has no background workers and an empty
    ``pg_stat_activity``), and the shape of versions before 2.23, where a job that
    never ran has no ``job_stats`` row at all. The statements are the probe's own."""
    pg = postgres_server
    create_database(pg, "ts_mirror")
    install_mirror(pg, "ts_mirror", "postgres")
    pg.psql(
        """
        INSERT INTO timescaledb_information.jobs (job_id, application_name, proc_schema,
            proc_name, scheduled, next_start, hypertable_schema, hypertable_name) VALUES
          (1, 'Telemetry Reporter [1]', '_timescaledb_functions', 'policy_telemetry', true,
           '2026-11-24 00:00:00+00', NULL, NULL),
          (1002, 'User-Defined Action [1002]', 'public', 'custom_job', true,
           '2026-11-23 06:00:00+00', NULL, NULL);
        INSERT INTO timescaledb_information.job_stats VALUES
          (NULL, NULL, 1, '2026-11-23 00:00:00+00', '2026-11-23 00:00:03+00',
           'Success', 'Running', '3 seconds', '2026-11-24 00:00:00+00', 2, 2, 0);
        """,
        "ts_mirror",
    )
    run: Running = await exporter_factory(_config(pg, "ts_mirror"))
    m = await scrape_until(run, lambda m: _up(m) == 1)
    version = pg.psql("SHOW server_version").strip()
    info = {"server_version": version, "extension_version": MIRROR_EXTENSION_VERSION}
    assert value(m, "tradeops_timescale_info", **T, **info) == 1
    tele = {**T, "job_id": "1", "proc": "policy_telemetry", "hypertable": ""}
    never = {**T, "job_id": "1002", "proc": "custom_job", "hypertable": ""}
    assert value(m, "tradeops_timescale_job_running", **tele) == 1
    assert value(m, "tradeops_timescale_job_runs_total", **tele) == 2
    # no stats row: state known, run results absent
    assert value(m, "tradeops_timescale_job_paused", **never) == 0
    assert value(m, "tradeops_timescale_job_running", **never) == 0
    assert value(m, "tradeops_timescale_job_last_run_success", **never) is None
    assert value(m, "tradeops_timescale_job_runs_total", **never) is None
    assert value(m, "tradeops_timescale_job_next_start_timestamp_seconds", **never) is None


@pytest.fixture
def standby_root() -> Iterator[Path]:
    """Where the standby lives (see ``service_root``)."""
    with service_root("ts-standby") as root:
        yield root


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
        config = f"""
timescale:
  - {{name: primary, address: "{primary.address}", database: postgres, user: postgres,
      password: "${{TS_TEST_PASSWORD}}", sslmode: disable, interval: 500ms, timeout: 400ms}}
  - {{name: standby, address: "{standby.address}", database: postgres, user: postgres,
      password: "${{TS_TEST_PASSWORD}}", sslmode: disable, interval: 500ms, timeout: 400ms}}
"""
        run: Running = await exporter_factory(config)
        p, s = {"target": "primary"}, {"target": "standby"}
        await eventually(
            _check(
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
        assert _errors(m, "other") == 0 and _errors(m, "protocol") == 0
        # a standby counts the queries that recovery cancelled: none here, on either side
        for target, server in ((p, primary), (s, standby)):
            conflicts = value(m, "tradeops_timescale_recovery_conflicts_total", **target)
            assert conflicts == _stat_database(server, "postgres", "conflicts") == 0
    finally:
        standby.stop()
        primary.psql("SELECT pg_drop_replication_slot('parked')")


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


async def test_locked_table_fails_alone_and_fast(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    """A watched table under an ACCESS EXCLUSIVE lock (DDL, VACUUM FULL) waits only
    for the short lock_timeout; the rest of its batch still reports."""
    pg = postgres_server
    create_database(pg, "ts_locks")
    pg.psql(
        "CREATE TABLE free (time timestamptz); INSERT INTO free VALUES (now());"
        " CREATE TABLE busy (time timestamptz); INSERT INTO busy VALUES (now());",
        "ts_locks",
    )
    holder = await asyncpg.connect(pg.dsn("ts_locks"))
    try:
        await holder.execute("BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        tables = "      - {name: free, table: free}\n      - {name: busy, table: busy}"
        run: Running = await exporter_factory(
            _config(pg, "ts_locks", tables=tables, interval="2s", timeout="1s")
        )
        m = await scrape_until(run, lambda m: _up(m) is not None, timeout=5)
        assert _up(m) == 1
        ok = "tradeops_timescale_table_query_success"
        assert value(m, ok, **T, table="busy") == 0
        assert value(m, ok, **T, table="free") == 1
        duration = value(m, "tradeops_probe_duration_seconds", **KIND)
        assert duration is not None and duration < 0.9  # two lock waits of 125 ms
    finally:
        await holder.close()


async def test_slow_table_is_isolated_from_its_batch(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    """A watched relation slower than statement_timeout (a view that sleeps stands in
    for a table scanned without an index) cancels its batch once; from the next run
    on, the fast tables report again and only the slow one stays unknown."""
    pg = postgres_server
    create_database(pg, "ts_slow")
    pg.psql(
        "CREATE TABLE fast1 (time timestamptz); INSERT INTO fast1 VALUES (now());"
        " CREATE TABLE fast2 (time timestamptz); INSERT INTO fast2 VALUES (now());"
        " CREATE VIEW slow AS SELECT now() AS time FROM pg_sleep(5);",
        "ts_slow",
    )
    tables = "".join(f"      - {{name: {t}, table: {t}}}\n" for t in ("fast1", "slow", "fast2"))
    run: Running = await exporter_factory(
        _config(pg, "ts_slow", tables=tables, interval="1s", timeout="900ms")
    )
    ok = "tradeops_timescale_table_query_success"

    def runs(m: Series) -> float:
        return value(m, "tradeops_probe_runs_total", **KIND) or 0

    first = await scrape_until(run, lambda m: value(m, ok, **T, table="slow") is not None)
    assert [value(first, ok, **T, table=t) for t in ("fast1", "slow", "fast2")] == [0, 0, 0]
    settled = runs(first) + 2  # the suspects asked alone, then the fast ones batched again
    m = await scrape_until(run, lambda m: runs(m) >= settled and _up(m) == 1, timeout=15)
    assert value(m, ok, **T, table="fast1") == 1
    assert value(m, ok, **T, table="fast2") == 1
    assert value(m, ok, **T, table="slow") == 0
    newest = "tradeops_timescale_table_newest_row_timestamp_seconds"
    assert value(m, newest, **T, table="fast1") is not None
    assert value(m, newest, **T, table="slow") is None


async def test_missing_database_is_config(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    run: Running = await exporter_factory(_config(postgres_server, "no_such_database"))
    await eventually(_check(run, lambda m: _errors(m, "config") >= 1), timeout=5)
    assert _up(await run.scrape()) == 0


async def test_garbage_on_the_port_is_protocol(
    exporter_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\x00\xff" * 64)
        await writer.drain()
        writer.close()

    monkeypatch.setenv("TS_TEST_PASSWORD", "irrelevant")
    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        run: Running = await exporter_factory(f"""
timescale:
  - {{name: db, address: "127.0.0.1:{port}", database: d, user: u, sslmode: disable,
      password: "${{TS_TEST_PASSWORD}}", interval: 1s, timeout: 500ms}}
""")
        await eventually(_check(run, lambda m: _errors(m, "protocol") >= 1), timeout=5)
        m = await run.scrape()
        assert _up(m) == 0 and _errors(m, "other") == 0


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
        "ts_budget",
    )
    tables = [
        {"name": f"t{i}", "schema": "s" * 63, "table": f"{long}{i}"} for i in range(1000, 2000)
    ]
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


async def test_pooled_connections_keep_the_running_loop(
    postgres_server: Postgres, superuser_password: str
) -> None:
    """The budget's loop proxy is for connecting only: asyncpg finds a connection's
    running task by its loop (``asyncio.current_task(loop)``), so the connection must
    hold the real one. Pins the connection class's reliance on asyncpg's constructor."""
    target = TimescaleTarget.model_validate(
        {
            "name": "db",
            "address": postgres_server.address,
            "database": "postgres",
            "user": "postgres",
            "password": "${TS_TEST_PASSWORD}",
            "sslmode": "disable",
            "interval": 2.0,
            "timeout": 1.0,
        }
    )
    state = TimescaleState(target)
    try:
        assert (await run_probe(TIMESCALE, target, state, target.timeout_s)).ok
        pool = await state.pool()
        async with pool.acquire() as conn:
            assert conn._con._loop is asyncio.get_running_loop()
        assert state.budget.used > 0  # and what it received was charged
    finally:
        await state.aclose()
