"""Ticks into a TimescaleDB hypertable with a compression policy, for the demo
(on the stack's PGlite, :class:`stack.TimescaleLite`) and docker compose (on the
TimescaleDB image).

:meth:`HypertableTicks.setup` creates ``market.ticks`` as a hypertable of
five-minute chunks (idempotent), seeds an hour of history when it is empty (old
chunks for the policy to compress at once), enables compression and adds a
compression policy that runs every minute on chunks older than ten minutes.
The writer then inserts one row per symbol every ``interval`` seconds, on a
connection of its own each time: PGlite serves one client at a time, so a kept
connection would lock the exporter out.

PGlite runs no background workers, hence no job scheduler: with
``run_jobs=True`` the simulator runs the policy on its schedule itself
(``CALL run_job``) and records each run in the job statistics as the scheduler
does, so that the exporter's job series are the extension's own views. A real
TimescaleDB (compose) runs the policy itself: leave ``run_jobs`` off there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import datetime
from typing import Any

import asyncpg

from .sim_timescale import SCHEMA, SYMBOLS, TABLE

LOG = logging.getLogger("stack.sim_hypertable")

HYPERTABLE = f"{SCHEMA}.{TABLE}"
CHUNK_INTERVAL = "5 minutes"
COMPRESS_AFTER = "10 minutes"
SCHEDULE_SECONDS = 60.0
"""The compression policy's schedule interval."""
HISTORY_MINUTES = 60
"""Minutes of one-a-minute ticks seeded into an empty table."""
STATEMENT_TIMEOUT = 30.0
_ERRORS = (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)

_SETUP = f"""
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {HYPERTABLE} (
    time   timestamptz NOT NULL,
    symbol text        NOT NULL,
    bid    float8      NOT NULL,
    ask    float8      NOT NULL
);
SELECT create_hypertable('{HYPERTABLE}', 'time',
    chunk_time_interval => interval '{CHUNK_INTERVAL}', if_not_exists => true);
"""
_SEED = f"""
INSERT INTO {HYPERTABLE} (time, symbol, bid, ask)
SELECT now() - m * interval '1 minute', s, 1.0 + random() / 10, 1.0002 + random() / 10
  FROM generate_series(1, {HISTORY_MINUTES}) m, unnest($1::text[]) s
 WHERE NOT EXISTS (SELECT 1 FROM {HYPERTABLE})
"""
_COMPRESSED = f"""
SELECT compression_enabled FROM timescaledb_information.hypertables
 WHERE hypertable_schema = '{SCHEMA}' AND hypertable_name = '{TABLE}'
"""
_COMPRESS = f"""
ALTER TABLE {HYPERTABLE} SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'symbol', timescaledb.compress_orderby = 'time DESC')
"""
_POLICY = f"""
SELECT add_compression_policy('{HYPERTABLE}', compress_after => interval '{COMPRESS_AFTER}',
    schedule_interval => interval '{int(SCHEDULE_SECONDS)} seconds', if_not_exists => true)
"""
_JOB = f"""
SELECT job_id FROM timescaledb_information.jobs
 WHERE proc_name = 'policy_compression'
   AND hypertable_schema = '{SCHEMA}' AND hypertable_name = '{TABLE}'
"""
_INSERT = (
    f"INSERT INTO {HYPERTABLE} (time, symbol, bid, ask)"
    " SELECT now(), s, b, b + 0.0002 FROM unnest($1::text[], $2::float8[]) AS u(s, b)"
)
RECORD_RUN = """
WITH run AS (SELECT $1::int AS id, $2::timestamptz AS started, $3::timestamptz AS finished,
                    $4::boolean AS ok)
INSERT INTO _timescaledb_internal.bgw_job_stat AS s (job_id, last_start, last_finish,
    next_start, last_successful_finish, last_run_success, total_runs, total_duration,
    total_duration_failures, total_successes, total_failures, total_crashes,
    consecutive_failures, consecutive_crashes)
SELECT j.id, r.started, r.finished,
       CASE WHEN r.ok THEN r.started + j.schedule_interval ELSE r.finished + j.retry_period END,
       CASE WHEN r.ok THEN r.finished ELSE '-infinity' END, r.ok, 1, r.finished - r.started,
       CASE WHEN r.ok THEN interval '0' ELSE r.finished - r.started END,
       r.ok::int, (NOT r.ok)::int, 0, (NOT r.ok)::int, 0
  FROM run r JOIN _timescaledb_config.bgw_job j ON j.id = r.id
ON CONFLICT (job_id) DO UPDATE SET
    last_start = excluded.last_start, last_finish = excluded.last_finish,
    next_start = excluded.next_start, last_run_success = excluded.last_run_success,
    last_successful_finish = CASE WHEN excluded.last_run_success
        THEN excluded.last_finish ELSE s.last_successful_finish END,
    total_runs = s.total_runs + 1,
    total_duration = s.total_duration + excluded.total_duration,
    total_duration_failures = s.total_duration_failures + excluded.total_duration_failures,
    total_successes = s.total_successes + excluded.total_successes,
    total_failures = s.total_failures + excluded.total_failures,
    consecutive_failures = CASE WHEN excluded.last_run_success
        THEN 0 ELSE s.consecutive_failures + 1 END
"""
"""One run's outcome as TimescaleDB's scheduler records it (``bgw_job_stat_mark_end``):
counters, last start and finish, the next start a schedule interval after the start
(a retry period after a failed finish). The same statement as the tests' ``run_job``."""


class HypertableTicks:
    """Writes ticks into the hypertable every ``interval`` seconds until stopped and,
    with ``run_jobs``, runs its compression policy every ``SCHEDULE_SECONDS``."""

    def __init__(
        self,
        dsn: str,
        interval: float = 1.0,
        run_jobs: bool = False,
        symbols: tuple[str, ...] = SYMBOLS,
    ) -> None:
        self._dsn = dsn  # may hold a password: never logged
        self.interval = interval
        self.run_jobs = run_jobs
        self.symbols = symbols
        self.ticks_written = 0
        self.job_runs = 0
        self.job_id: int | None = None
        self._prices = {s: 1.0 + random.random() for s in symbols}
        self._tasks: list[asyncio.Task[None]] = []

    async def _connect(self) -> Any:
        # unnamed statements: PGlite's one backend is shared by every client
        return await asyncpg.connect(
            self._dsn, ssl=False, statement_cache_size=0, timeout=STATEMENT_TIMEOUT
        )

    async def setup(self) -> int:
        """Create the hypertable, seed its history, enable compression and add the
        policy (each step only if not done yet); returns the policy's job id."""
        conn = await self._connect()
        try:
            await conn.execute(_SETUP, timeout=STATEMENT_TIMEOUT)
            await conn.execute(_SEED, list(self.symbols), timeout=STATEMENT_TIMEOUT)
            # once: some versions refuse compression settings once chunks are compressed
            if not await conn.fetchval(_COMPRESSED, timeout=STATEMENT_TIMEOUT):
                await conn.execute(_COMPRESS, timeout=STATEMENT_TIMEOUT)
            await conn.execute(_POLICY, timeout=STATEMENT_TIMEOUT)
            self.job_id = int(await conn.fetchval(_JOB, timeout=STATEMENT_TIMEOUT))
        finally:
            await _close(conn)
        return self.job_id

    async def start(self) -> None:
        """Set up, run the policy once (with ``run_jobs``), then write (and run the
        policy on its schedule) in background tasks."""
        await self.setup()
        self._tasks.append(asyncio.create_task(self._write_loop(), name="sim-hypertable"))
        if self.run_jobs:
            await self.run_policy()
            self._tasks.append(asyncio.create_task(self._job_loop(), name="sim-hypertable-job"))

    async def stop(self) -> None:
        """Stop the background tasks."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def write_once(self) -> None:
        """Insert one tick per symbol (a connection of its own)."""
        for s in self.symbols:
            self._prices[s] = max(0.01, self._prices[s] * (1 + random.gauss(0, 0.0005)))
        conn = await self._connect()
        try:
            await conn.execute(
                _INSERT, list(self.symbols), list(self._prices.values()), timeout=STATEMENT_TIMEOUT
            )
        finally:
            await _close(conn)
        self.ticks_written += len(self.symbols)

    async def run_policy(self) -> bool:
        """Run the compression policy (``CALL run_job``: chunks older than
        ``COMPRESS_AFTER`` get compressed) and record the run as the scheduler
        would; True if it succeeded."""
        assert self.job_id is not None, "setup() first"
        conn = await self._connect()
        try:
            start: datetime = await conn.fetchval("SELECT clock_timestamp()")
            try:
                await conn.execute(f"CALL run_job({self.job_id})", timeout=STATEMENT_TIMEOUT)
                ok = True
            except asyncpg.PostgresError as exc:
                LOG.warning("compression policy failed: %s", type(exc).__name__)
                ok = False
            finish: datetime = await conn.fetchval("SELECT clock_timestamp()")
            await conn.execute(RECORD_RUN, self.job_id, start, finish, ok)
        finally:
            await _close(conn)
        self.job_runs += 1
        return ok

    async def _write_loop(self) -> None:
        while True:
            try:
                await self.write_once()
            except _ERRORS as exc:
                LOG.warning("hypertable insert failed; retrying: %s", type(exc).__name__)
            await asyncio.sleep(self.interval)

    async def _job_loop(self) -> None:
        while True:
            await asyncio.sleep(SCHEDULE_SECONDS)
            try:
                await self.run_policy()
            except _ERRORS as exc:
                LOG.warning("compression policy run failed; next on schedule: %s", exc)


async def _close(conn: Any) -> None:
    """Close a connection; drop it if the server does not answer, or when stopping
    (a cancelled statement's connection would wait for the close timeout)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        conn.terminate()
        return
    try:
        await asyncio.wait_for(conn.close(), 2.0)
    except _ERRORS:
        conn.terminate()
    except asyncio.CancelledError:
        conn.terminate()
        raise
