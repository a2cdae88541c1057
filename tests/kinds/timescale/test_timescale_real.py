"""The TimescaleDB probe against a real TimescaleDB: the stack's PGlite build
(PostgreSQL 17.5, TimescaleDB 2.23; stack/pglite.py).

One server serves the session (``timescale_lite``); each test works in a schema of
its own. It serves one client at a time and keeps one session for all of them, so
the targets use ``statement_cache: false`` and ``keep_connection: false``, and the
tests' own SQL goes through ``lite_sql`` (async: the exporter shares the loop).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import asyncpg.connection
import pytest
import yaml

from exporter.kinds.timescale import KIND as TIMESCALE
from exporter.kinds.timescale.config import TimescaleTarget
from exporter.kinds.timescale.probe import TimescaleState
from exporter.probe import Sample
from exporter.scheduler import RunOutcome, run_probe
from stack import TimescaleLite

from ...fixtures_timescale import LITE_PASSWORD_ENV, lite_fetch, lite_sql, lite_target, run_job
from ...helpers import Running, Series, report, scrape_until, service_root, value, with_label

Factory = Callable[..., Any]
Samples = dict[tuple[str, tuple[str, ...]], float]
T = {"target": "db"}
KIND = {"kind": "timescale", "target": "db"}


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LITE_PASSWORD_ENV, TimescaleLite.password)


async def _probe(lite: TimescaleLite, **fields: object) -> tuple[RunOutcome, Samples]:
    """One run on a state of its own (closed after it)."""
    target = TimescaleTarget.model_validate(lite_target(lite, interval=3.0, timeout=2.0, **fields))
    state = TimescaleState(target)
    try:
        outcome = await run_probe(TIMESCALE, target, state, target.timeout_s)
    finally:
        await state.aclose()
    samples = {(s.family.name, s.labels): s.value for s in outcome.samples if isinstance(s, Sample)}
    return outcome, samples


def _job(samples: Samples, family: str, job_id: int, proc: str, ht: str = "") -> float | None:
    return samples.get((f"tradeops_timescale_job_{family}", ("db", str(job_id), proc, ht)))


def _ht(samples: Samples, family: str, hypertable: str) -> float | None:
    return samples.get((f"tradeops_timescale_hypertable_{family}", ("db", hypertable)))


async def _epoch(lite: TimescaleLite, sql: str, *args: object) -> float:
    rows = await lite_fetch(lite, f"SELECT extract(epoch FROM ({sql}))::float8", *args)
    return float(rows[0][0])


async def test_hypertables_report_chunks_compression_and_size(
    timescale_lite: TimescaleLite,
) -> None:
    """Chunk and compressed-chunk counts from real chunks (compress_chunk), the
    extension's own hypertable_size(), and a watched hypertable's newest row."""
    lite = timescale_lite
    await lite_sql(
        lite,
        """
        CREATE SCHEMA ht_a;
        CREATE TABLE ht_a.ticks (time timestamptz NOT NULL, symbol text, price float8);
        SELECT create_hypertable('ht_a.ticks', 'time', chunk_time_interval => interval '1 day');
        INSERT INTO ht_a.ticks SELECT '2026-01-01 00:00+00'::timestamptz + g * interval '1 hour',
                                      'EURUSD', g FROM generate_series(0, 5 * 24 - 1) g;
        ALTER TABLE ht_a.ticks SET (timescaledb.compress,
                                    timescaledb.compress_segmentby = 'symbol');
        SELECT compress_chunk(c)
          FROM show_chunks('ht_a.ticks', older_than => '2026-01-03 00:00+00') c;
        CREATE TABLE ht_a."odd ht" (time timestamptz NOT NULL);
        SELECT create_hypertable('ht_a."odd ht"', 'time', chunk_time_interval => interval '1 day');
        INSERT INTO ht_a."odd ht" VALUES ('2026-02-01'), ('2026-02-02'), ('2026-02-03');
        """,
    )
    outcome, m = await _probe(lite, tables=[{"name": "ticks", "schema": "ht_a", "table": "ticks"}])
    assert outcome.ok, outcome.error
    rows = await lite_fetch(
        lite,
        "SELECT hypertable_size('ht_a.ticks'), hypertable_size('ht_a.\"odd ht\"'),"
        " (SELECT extversion FROM pg_extension WHERE extname = $1),"
        " current_setting('server_version')",
        "timescaledb",
    )
    ticks_size, odd_size, ext_version, server_version = rows[0]
    assert m[("tradeops_timescale_info", ("db", server_version, ext_version))] == 1
    assert ext_version.startswith("2.23")
    assert m[("tradeops_timescale_extension_installed", ("db",))] == 1
    assert _ht(m, "chunks", "ht_a.ticks") == 5
    assert _ht(m, "compressed_chunks", "ht_a.ticks") == 2
    assert _ht(m, "compression_enabled", "ht_a.ticks") == 1
    assert _ht(m, "size_bytes", "ht_a.ticks") == ticks_size > 0
    assert _ht(m, "chunks", "ht_a.odd ht") == 3
    assert _ht(m, "compressed_chunks", "ht_a.odd ht") == 0
    assert _ht(m, "compression_enabled", "ht_a.odd ht") == 0
    assert _ht(m, "size_bytes", "ht_a.odd ht") == odd_size > 0
    newest = m[("tradeops_timescale_table_newest_row_timestamp_seconds", ("db", "ticks"))]
    assert newest == await _epoch(lite, "'2026-01-05 23:00+00'::timestamptz")
    assert not any("chunk" in name and "hypertable" not in name for name, _ in m)


async def test_a_compression_policy_run_with_run_job(timescale_lite: TimescaleLite) -> None:
    """A compression policy job before its first run and after two runs: its work
    (compressed chunks) and its statistics as the scheduler records them."""
    lite = timescale_lite
    await lite_sql(
        lite,
        """
        CREATE SCHEMA ht_b;
        CREATE TABLE ht_b.ticks (time timestamptz NOT NULL, price float8);
        SELECT create_hypertable('ht_b.ticks', 'time', chunk_time_interval => interval '1 day');
        INSERT INTO ht_b.ticks SELECT '2026-01-01 00:00+00'::timestamptz + g * interval '1 hour', g
          FROM generate_series(0, 4 * 24 - 1) g;
        ALTER TABLE ht_b.ticks SET (timescaledb.compress);
        """,
    )
    policy = "SELECT add_compression_policy('ht_b.ticks', interval '2 days')"
    job = int((await lite_fetch(lite, policy))[0][0])
    proc = "policy_compression"
    _, before = await _probe(lite)
    assert _job(before, "paused", job, proc, "ht_b.ticks") == 0
    assert _job(before, "running", job, proc, "ht_b.ticks") == 0
    for family in ("last_run_success", "runs_total", "failures_total"):
        assert _job(before, family, job, proc, "ht_b.ticks") is None, family  # never ran
    assert _job(before, "last_success_timestamp_seconds", job, proc, "ht_b.ticks") is None
    assert _ht(before, "compressed_chunks", "ht_b.ticks") == 0

    started = time.time()
    assert await run_job(lite, job)
    assert await run_job(lite, job)
    outcome, m = await _probe(lite)
    assert outcome.ok, outcome.error
    assert _ht(m, "compressed_chunks", "ht_b.ticks") == 4 == _ht(m, "chunks", "ht_b.ticks")
    assert _job(m, "last_run_success", job, proc, "ht_b.ticks") == 1
    assert _job(m, "runs_total", job, proc, "ht_b.ticks") == 2
    assert _job(m, "failures_total", job, proc, "ht_b.ticks") == 0
    last = _job(m, "last_success_timestamp_seconds", job, proc, "ht_b.ticks")
    assert last is not None and started - 1 <= last <= time.time() + 1
    # the policy's schedule (half the chunk interval) after the last run's start
    expected = await _epoch(
        lite,
        "SELECT s.last_run_started_at + j.schedule_interval FROM timescaledb_information.jobs j"
        " JOIN timescaledb_information.job_stats s USING (job_id) WHERE job_id = $1",
        job,
    )
    assert _job(m, "next_start_timestamp_seconds", job, proc, "ht_b.ticks") == expected
    assert expected - last == pytest.approx(12 * 3600, abs=5)


async def test_a_job_that_raises_is_counted_as_failed(timescale_lite: TimescaleLite) -> None:
    """A user-defined action whose procedure raises: failures counted, last run not
    successful, no last success (the scheduler's ``-infinity``, never ``-Inf``); paused,
    it has no next start."""
    lite = timescale_lite
    await lite_sql(
        lite,
        """
        CREATE SCHEMA ht_c;
        CREATE PROCEDURE ht_c.feed_check(job_id int, config jsonb) LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the feed handler wrote nothing for 5 minutes'; END $$;
        """,
    )
    add = "SELECT add_job('ht_c.feed_check', interval '1 hour')"
    job = int((await lite_fetch(lite, add))[0][0])
    assert not await run_job(lite, job)
    outcome, m = await _probe(lite)
    assert outcome.ok, outcome.error
    assert _job(m, "last_run_success", job, "feed_check") == 0
    assert _job(m, "failures_total", job, "feed_check") == 1
    assert _job(m, "runs_total", job, "feed_check") == 1
    assert _job(m, "last_success_timestamp_seconds", job, "feed_check") is None
    assert _job(m, "next_start_timestamp_seconds", job, "feed_check") is not None
    assert _job(m, "paused", job, "feed_check") == 0

    assert not await run_job(lite, job)
    await lite_fetch(lite, "SELECT alter_job($1, scheduled => false)", job)
    _, m = await _probe(lite)
    assert _job(m, "failures_total", job, "feed_check") == 2
    assert _job(m, "paused", job, "feed_check") == 1
    assert _job(m, "next_start_timestamp_seconds", job, "feed_check") is None


async def test_named_statements_collide_on_a_shared_backend(timescale_lite: TimescaleLite) -> None:
    """Every client shares PGlite's one backend (as clients share server connections
    behind PgBouncer in transaction mode): named statements left by an earlier client
    (an exporter before its restart) collide with asyncpg's next names. Unnamed
    statements (``statement_cache: false``) do not."""
    lite = timescale_lite
    following = asyncpg.connection._uid  # asyncpg names its statements by this counter
    names = (f"__asyncpg_stmt_{n:x}__" for n in range(following + 1, following + 200))
    leftovers = "".join(f'PREPARE "{name}" AS SELECT 1;' for name in names)
    await lite_sql(lite, leftovers)
    try:
        cached, _ = await _probe(lite, statement_cache=True)
        assert cached.reason == "protocol"
        assert "already exists" in str(cached.error)
        unnamed, m = await _probe(lite)
        assert unnamed.ok, unnamed.error
        assert m[("tradeops_timescale_extension_installed", ("db",))] == 1
    finally:
        await lite_sql(lite, "DEALLOCATE ALL")


async def _connect_wait(lite: TimescaleLite, timeout: float) -> float:
    """Seconds until a client got PGlite's attention (and ran SELECT 1)."""
    start = time.perf_counter()
    conn = await asyncpg.connect(lite.dsn(), ssl=False, statement_cache_size=0, timeout=timeout)
    try:
        await conn.execute("SELECT 1")
    finally:
        await conn.close(timeout=5)
    return time.perf_counter() - start


async def test_a_kept_connection_locks_every_other_client_out(
    timescale_lite: TimescaleLite, exporter_factory: Factory
) -> None:
    """PGlite queues every client behind the one it serves. With the pooled connection
    kept between runs, no other client gets in while the exporter runs; with
    ``keep_connection: false`` other clients, and a second target, take turns."""
    lite = timescale_lite
    kept = lite_target(lite, keep_connection=True)
    run: Running = await exporter_factory(yaml.safe_dump({"timescale": [kept]}))
    await scrape_until(run, lambda m: value(m, "tradeops_up", **KIND) == 1)
    with pytest.raises(TimeoutError):
        await _connect_wait(lite, timeout=1.5)
    await run.stop()  # its pool closes: the queue moves again
    assert await _connect_wait(lite, timeout=10) < 5

    targets = [lite_target(lite, name="db"), lite_target(lite, name="db2")]
    run = await exporter_factory(yaml.safe_dump({"timescale": targets}))

    def both_up(m: Series) -> bool:
        return all(value(m, "tradeops_up", kind="timescale", target=t) == 1 for t in ("db", "db2"))

    await scrape_until(run, both_up, timeout=10)
    waits = [await _connect_wait(lite, timeout=10) for _ in range(10)]
    m = await scrape_until(run, both_up, timeout=10)
    errors = with_label(m, "tradeops_probe_errors_total", kind="timescale")
    report(
        f"timescale (PGlite): a client's wait for its turn while two targets probe every"
        f" 500 ms: median {statistics.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms;"
        f" failed runs {sum(errors.values()):.0f}"
    )
    assert max(waits) < 2.0


@pytest.fixture
def lite_to_drop() -> Iterator[TimescaleLite]:
    """A PGlite of its own: once dropped, the extension cannot be created again in
    PGlite's one session."""
    with service_root("ts-lite-drop") as root:
        server = TimescaleLite(Path(root)).start()
        yield server
        server.stop()


async def test_a_dropped_extension_is_detected_cleanly(
    lite_to_drop: TimescaleLite, exporter_factory: Factory
) -> None:
    """The extension dropped under a running exporter: the next runs report
    ``extension_installed 0``, no hypertable or job series, and no error."""
    lite = lite_to_drop
    await lite_sql(
        lite,
        "CREATE TABLE ticks (time timestamptz NOT NULL);"
        " SELECT create_hypertable('ticks', 'time');"
        " INSERT INTO ticks VALUES (now());"
        " SELECT add_retention_policy('ticks', interval '30 days');",
    )
    run: Running = await exporter_factory(yaml.safe_dump({"timescale": [lite_target(lite)]}))
    m = await scrape_until(run, lambda m: value(m, "tradeops_up", **KIND) == 1)
    assert value(m, "tradeops_timescale_hypertable_chunks", **T, hypertable="public.ticks") == 1
    assert with_label(m, "tradeops_timescale_job_paused") != {}

    await lite_sql(lite, "DROP EXTENSION timescaledb CASCADE")

    def dropped(m: Series) -> bool:
        return value(m, "tradeops_timescale_extension_installed", **T) == 0

    runs = value(m, "tradeops_probe_runs_total", **KIND) or 0
    m = await scrape_until(run, dropped, timeout=10)
    m = await scrape_until(
        run, lambda s: (value(s, "tradeops_probe_runs_total", **KIND) or 0) > runs + 3, timeout=10
    )
    assert value(m, "tradeops_up", **KIND) == 1
    assert value(m, "tradeops_timescale_extension_installed", **T) == 0
    assert with_label(m, "tradeops_timescale_hypertable_chunks") == {}
    assert with_label(m, "tradeops_timescale_job_paused") == {}
    info = with_label(m, "tradeops_timescale_info", **T)
    assert [dict(lbl)["extension_version"] for lbl in info] == [""]
    errors = with_label(m, "tradeops_probe_errors_total", **KIND)
    assert sum(v for lbl, v in errors.items() if dict(lbl)["reason"] != "timeout") == 0
    # the plain-PostgreSQL series stay
    assert value(m, "tradeops_timescale_database_size_bytes", **T) is not None
