"""Every SQL statement the TimescaleDB/PostgreSQL probe sends, in one place.

Kept together so that they can be read in one sitting and checked against a
real TimescaleDB (the extension's views are only mirrored in the tests). All
statements are read-only. System catalogs are referenced unqualified, as
libpq tools do; ``pg_catalog`` is searched first unless a role's
``search_path`` names it explicitly later.

Table and column names from the configuration are never interpolated as
text: they go through :func:`quote_ident`, which doubles embedded quotes.
"""

from __future__ import annotations

from collections.abc import Sequence

ROUNDTRIP = "SELECT 1"

COMMIT = "COMMIT"


def begin(statement_ms: int, lock_ms: int, idle_ms: int, *, after_failure: bool = False) -> str:
    """The run's transaction: read-only, with its limits set for it alone.

    The limits are not startup parameters: PgBouncer refuses those it does not
    track. ``SET LOCAL`` ends with the transaction, so on a server connection that
    PgBouncer shares between clients (transaction pooling) nothing is left behind
    for the next client, and every statement of the run is on the one connection
    its transaction holds. ``idle_in_transaction_session_timeout`` bounds what a
    stalled exporter can hold (a server connection, locks on the watched tables).
    One simple query, so one round trip; ``after_failure`` first ends the aborted
    transaction a failed statement left (a new one, with the same limits).
    """
    return (
        ("ROLLBACK; " if after_failure else "")
        + "BEGIN READ ONLY;"
        + f" SET LOCAL statement_timeout = {int(statement_ms)};"
        + f" SET LOCAL lock_timeout = {int(lock_ms)};"
        + f" SET LOCAL idle_in_transaction_session_timeout = {int(idle_ms)}"
    )


SERVER = """
SELECT current_setting('server_version') AS server_version,
       pg_is_in_recovery() AS in_recovery,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved_connections,
       extract(epoch FROM pg_postmaster_start_time())::float8 AS start_time,
       pg_database_size(current_database()) AS database_size,
       age(db.datfrozenxid) AS xid_age,
       d.xact_commit, d.xact_rollback, d.deadlocks, d.conflicts,
       (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'timescaledb')
           AS extension_version,
       (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'timescaledb') AS extension_schema
  FROM pg_database db
  LEFT JOIN pg_stat_database d ON d.datid = db.oid
 WHERE db.datname = current_database()
"""
"""One row: identity, recovery state, limits, size and the database's counters.
``extension_version`` is NULL when the timescaledb extension is not installed."""

ACTIVITY = """
SELECT coalesce(state, 'unknown') AS state,
       count(*) AS connections,
       extract(epoch FROM max(now() - xact_start)
               FILTER (WHERE pid <> pg_backend_pid()))::float8 AS oldest_xact
  FROM pg_stat_activity
 WHERE backend_type = 'client backend'
 GROUP BY 1
"""
"""Client connections by state (server-wide) and the oldest open transaction in
each state, excluding this probe's own. Other users' ``state``/``xact_start``
are visible only with ``pg_read_all_stats`` (part of ``pg_monitor``)."""

PRIMARY_REPLICATION = """
SELECT (SELECT count(*) FROM pg_stat_replication) AS replicas,
       (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming') AS streaming,
       (SELECT extract(epoch FROM max(replay_lag))::float8 FROM pg_stat_replication)
           AS max_replay_lag,
       (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::float8
          FROM pg_stat_replication) AS max_replay_lag_bytes,
       (SELECT count(*) FROM pg_replication_slots WHERE NOT active) AS inactive_slots,
       (SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn))::float8
          FROM pg_replication_slots) AS max_slot_retained_bytes
"""
"""On a primary (``pg_current_wal_lsn()`` fails on a standby): replicas attached,
their worst replay lag, and replication slots holding WAL back."""

STANDBY_REPLICATION = """
SELECT extract(epoch FROM pg_last_xact_replay_timestamp())::float8 AS last_replay,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
       END AS replay_lag,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8
           AS replay_lag_bytes,
       (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming')
           AS receiver_streaming
"""
"""On a standby: replay lag in seconds (0 when everything received is replayed,
the usual postgres_exporter convention) and in bytes, and the WAL receiver."""

HYPERTABLES = """
WITH compressed AS (
  SELECT hypertable_schema, hypertable_name, count(*) AS chunks
    FROM timescaledb_information.chunks
   WHERE is_compressed
   GROUP BY 1, 2
)
SELECT h.hypertable_schema, h.hypertable_name, h.num_chunks, h.compression_enabled,
       coalesce(c.chunks, 0) AS compressed_chunks,
       {ext}.hypertable_size(format('%I.%I', h.hypertable_schema, h.hypertable_name)::regclass)
           AS total_bytes
  FROM timescaledb_information.hypertables h
  LEFT JOIN compressed c USING (hypertable_schema, hypertable_name)
 ORDER BY 1, 2
 LIMIT $1
"""
"""Per hypertable: chunk and compressed-chunk counts (one pass over the chunks,
never a row per chunk returned), and total size (data, indexes, TOAST,
compressed chunks; evaluated after the LIMIT). ``{ext}`` is the extension's
schema, quoted."""

JOBS = """
SELECT j.job_id, j.proc_schema, j.proc_name,
       coalesce(j.hypertable_schema || '.' || j.hypertable_name, '') AS hypertable,
       j.scheduled,
       s.job_status, s.last_run_status,
       CASE WHEN isfinite(s.last_successful_finish)
            THEN extract(epoch FROM s.last_successful_finish)::float8 END AS last_success,
       CASE WHEN isfinite(s.next_start)
            THEN extract(epoch FROM s.next_start)::float8 END AS next_start,
       s.total_runs, s.total_failures
  FROM timescaledb_information.jobs j
  LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
 ORDER BY j.job_id
 LIMIT $1
"""
"""Background jobs (policies and user actions) with their run statistics.
``job_stats`` has no row for a job that never ran (2.23: a row of NULLs). The
scheduler's table keeps ``-infinity`` for "never" (a job that never succeeded
has that last successful finish): such times are NULL here, not ``-Inf``."""


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier in double quotes, embedded quotes doubled."""
    if "\x00" in name:
        raise ValueError("identifier contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def hypertables(extension_schema: str) -> str:
    """The hypertable statement with the extension's schema filled in (quoted)."""
    return HYPERTABLES.format(ext=quote_ident(extension_schema))


def newest_row(schema: str, table: str, column: str) -> str:
    """The newest value of ``column`` in one table.

    ``ORDER BY col DESC LIMIT 1`` is answered by a backward scan of an index on
    the column (TimescaleDB creates one on the time column of a hypertable, and
    prunes to the newest chunk); ``IS NOT NULL`` keeps NULLs, which sort first
    in descending order, out of the answer without defeating the index.
    """
    col = quote_ident(column)
    return (
        f"SELECT {col} FROM {quote_ident(schema)}.{quote_ident(table)}"
        f" WHERE {col} IS NOT NULL ORDER BY {col} DESC LIMIT 1"
    )


def newest_rows(tables: Sequence[tuple[str, str, str]]) -> str:
    """Several :func:`newest_row` lookups in one round trip: one column each."""
    columns = ",\n       ".join(
        f"({newest_row(s, t, c)}) AS t{i}" for i, (s, t, c) in enumerate(tables)
    )
    return f"SELECT {columns}"
