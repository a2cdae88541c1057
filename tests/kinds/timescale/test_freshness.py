"""Ingest freshness against the stack's real PostgreSQL: newest rows, their SLA
and calendar, quoted names, and a locked or slow table that fails alone.

Each test makes its own database in the session's cluster. The unit test of
``to_unix`` needs no server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from decimal import Decimal

import asyncpg
import pytest

from exporter.kinds.timescale.freshness import to_unix
from stack import Postgres

from ...fixtures_timescale import KIND, Factory, T, create_database, db_config, holds, up
from ...helpers import Running, Series, eventually, scrape_until, value, with_label


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
        db_config(
            pg,
            "ts_fresh",
            tables="      - {name: ticks, table: ticks, freshness_sla: 2s}",
            interval="500ms",
            timeout="400ms",
        )
    )

    def newest(m: Series) -> float | None:
        return value(m, "tradeops_timescale_table_newest_row_timestamp_seconds", **T, table="ticks")

    m = await scrape_until(run, lambda m: up(m) == 1)
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
    await eventually(holds(run, lambda m: newest(m) == pytest.approx(second)), timeout=5)

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
    config = db_config(pg, "ts_sla", tables=tables).replace(
        "    sslmode: disable\n", "    sslmode: disable\n    calendar: xnys\n"
    )
    calendars = "calendars:\n  - {name: xnys, exchange: XNYS}\n  - {name: xlon, exchange: XLON}\n"
    run: Running = await exporter_factory(calendars + config)
    m = await scrape_until(run, lambda m: up(m) == 1)
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
    run: Running = await exporter_factory(db_config(pg, "ts_names", tables=tables))
    m = await scrape_until(run, lambda m: up(m) == 1)

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
            db_config(pg, "ts_locks", tables=tables, interval="2s", timeout="1s")
        )
        m = await scrape_until(run, lambda m: up(m) is not None, timeout=5)
        assert up(m) == 1
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
        db_config(pg, "ts_slow", tables=tables, interval="1s", timeout="900ms")
    )
    ok = "tradeops_timescale_table_query_success"

    def runs(m: Series) -> float:
        return value(m, "tradeops_probe_runs_total", **KIND) or 0

    first = await scrape_until(run, lambda m: value(m, ok, **T, table="slow") is not None)
    assert [value(first, ok, **T, table=t) for t in ("fast1", "slow", "fast2")] == [0, 0, 0]
    settled = runs(first) + 2  # the suspects asked alone, then the fast ones batched again
    m = await scrape_until(run, lambda m: runs(m) >= settled and up(m) == 1, timeout=15)
    assert value(m, ok, **T, table="fast1") == 1
    assert value(m, ok, **T, table="fast2") == 1
    assert value(m, ok, **T, table="slow") == 0
    newest = "tradeops_timescale_table_newest_row_timestamp_seconds"
    assert value(m, newest, **T, table="fast1") is not None
    assert value(m, newest, **T, table="slow") is None


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "s", 1767323045.0),
        (dt.datetime(2026, 1, 2, 3, 4, 5), "s", 1767323045.0),  # naive: read as UTC
        (dt.date(2026, 1, 2), "s", 1767312000.0),
        (1767323045, "s", 1767323045.0),
        (1767323045500, "ms", 1767323045.5),
        (Decimal("1767323045500000"), "us", 1767323045.5),
        (1767323045500000000, "ns", 1767323045.5),
        ("yesterday", "s", None),
        (True, "s", None),
    ],
)
def test_to_unix(raw: object, unit: str, expected: float | None) -> None:
    got = to_unix(raw, unit)
    assert got == (pytest.approx(expected) if expected is not None else None)
