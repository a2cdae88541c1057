"""TimescaleDB/PostgreSQL families. ``target`` is the configured target name;
``table`` is the configured name of a watched table, never its SQL name."""

from __future__ import annotations

from ...catalogue.base import family

T = "target"

INFO = family(
    "timescale_info",
    "gauge",
    "Identity of the database server; always 1. extension_version is empty without TimescaleDB.",
    T,
    "server_version",
    "extension_version",
)
EXTENSION_INSTALLED = family(
    "timescale_extension_installed",
    "gauge",
    "1 if the timescaledb extension is installed in the probed database, else 0.",
    T,
)
ROUNDTRIP = family(
    "timescale_query_roundtrip_seconds",
    "gauge",
    "Round trip of a trivial query on a pooled connection (excludes connecting).",
    T,
)
START_TIME = family(
    "timescale_start_time_seconds", "gauge", "Unix time the PostgreSQL server started.", T
)
IN_RECOVERY = family(
    "timescale_in_recovery",
    "gauge",
    "1 if the server is a standby (in recovery), 0 if it is a primary.",
    T,
)
CONNECTIONS = family(
    "timescale_connections",
    "gauge",
    "Client connections to the server (all databases) by state; 'unknown' when the "
    "role lacks pg_read_all_stats.",
    T,
    "state",
)
MAX_CONNECTIONS = family(
    "timescale_max_connections", "gauge", "The server's max_connections setting.", T
)
RESERVED_CONNECTIONS = family(
    "timescale_reserved_connections",
    "gauge",
    "The superuser_reserved_connections setting: slots ordinary roles cannot use.",
    T,
)
OLDEST_TRANSACTION = family(
    "timescale_oldest_transaction_seconds",
    "gauge",
    "Age of the oldest open transaction of any client (0 when none); long ones block "
    "vacuum and hold locks.",
    T,
)
OLDEST_IDLE_IN_TRANSACTION = family(
    "timescale_oldest_idle_in_transaction_seconds",
    "gauge",
    "Age of the oldest transaction whose session sits idle in transaction (0 when none).",
    T,
)
DATABASE_SIZE = family(
    "timescale_database_size_bytes", "gauge", "Size on disk of the probed database.", T
)
XID_AGE = family(
    "timescale_database_xid_age",
    "gauge",
    "Transactions since the database's oldest unfrozen XID (wraparound stops writes near 2^31).",
    T,
)
COMMITS = family(
    "timescale_transactions_committed_total",
    "counter",
    "Transactions committed in the probed database.",
    T,
)
ROLLBACKS = family(
    "timescale_transactions_rolled_back_total",
    "counter",
    "Transactions rolled back in the probed database.",
    T,
)
DEADLOCKS = family(
    "timescale_deadlocks_total", "counter", "Deadlocks detected in the probed database.", T
)
CONFLICTS = family(
    "timescale_recovery_conflicts_total",
    "counter",
    "Queries cancelled by conflicts with recovery (standbys) in the probed database.",
    T,
)
REPLICAS = family(
    "timescale_replicas_connected",
    "gauge",
    "On a primary: standbys (and other WAL receivers) attached.",
    T,
)
REPLICAS_STREAMING = family(
    "timescale_replicas_streaming",
    "gauge",
    "On a primary: attached standbys in the streaming state.",
    T,
)
PRIMARY_REPLAY_LAG = family(
    "timescale_replica_max_replay_lag_seconds",
    "gauge",
    "On a primary: the worst replay lag reported by an attached standby (absent with none).",
    T,
)
PRIMARY_REPLAY_LAG_BYTES = family(
    "timescale_replica_max_replay_lag_bytes",
    "gauge",
    "On a primary: WAL written but not yet replayed by the furthest-behind standby.",
    T,
)
INACTIVE_SLOTS = family(
    "timescale_replication_slots_inactive",
    "gauge",
    "On a primary: replication slots with no consumer attached (they retain WAL).",
    T,
)
SLOT_RETAINED_BYTES = family(
    "timescale_replication_slot_max_retained_bytes",
    "gauge",
    "On a primary: WAL held back by the replication slot that retains the most.",
    T,
)
STANDBY_REPLAY_LAG = family(
    "timescale_standby_replay_lag_seconds",
    "gauge",
    "On a standby: seconds since the last replayed transaction's commit, 0 when all "
    "received WAL is replayed.",
    T,
)
STANDBY_REPLAY_LAG_BYTES = family(
    "timescale_standby_replay_lag_bytes",
    "gauge",
    "On a standby: WAL received but not yet replayed.",
    T,
)
STANDBY_LAST_REPLAY = family(
    "timescale_standby_last_replay_timestamp_seconds",
    "gauge",
    "On a standby: commit time of the last transaction replayed.",
    T,
)
STANDBY_RECEIVER_STREAMING = family(
    "timescale_standby_wal_receiver_streaming",
    "gauge",
    "On a standby: 1 if the WAL receiver is streaming from the primary, else 0.",
    T,
)
TABLE_QUERY_OK = family(
    "timescale_table_query_success",
    "gauge",
    "1 if the newest-row query on the watched table succeeded; 0 if it failed (table or "
    "column missing, no privilege, statement timeout).",
    T,
    "table",
)
TABLE_HAS_ROWS = family(
    "timescale_table_has_rows",
    "gauge",
    "1 if the watched table has a row with a non-NULL time column, else 0.",
    T,
    "table",
)
TABLE_NEWEST = family(
    "timescale_table_newest_row_timestamp_seconds",
    "gauge",
    "Unix time in the time column of the watched table's newest row: the ingest freshness signal.",
    T,
    "table",
)
TABLE_SLA = family(
    "timescale_table_freshness_sla_seconds",
    "gauge",
    "The watched table's freshness SLA (300 s unless configured), under the calendar its "
    "ingest follows.",
    T,
    "table",
    "calendar",
)
TABLE_WITHIN_SLA = family(
    "timescale_table_within_sla",
    "gauge",
    "1 if the watched table's newest row is younger than its SLA at probe time, else 0 "
    "(empty tables are outside it).",
    T,
    "table",
)
HYPERTABLE_CHUNKS = family(
    "timescale_hypertable_chunks", "gauge", "Chunks of the hypertable.", T, "hypertable"
)
HYPERTABLE_COMPRESSED_CHUNKS = family(
    "timescale_hypertable_compressed_chunks",
    "gauge",
    "Chunks of the hypertable that are compressed.",
    T,
    "hypertable",
)
HYPERTABLE_COMPRESSION_ENABLED = family(
    "timescale_hypertable_compression_enabled",
    "gauge",
    "1 if compression is enabled on the hypertable, else 0.",
    T,
    "hypertable",
)
HYPERTABLE_SIZE = family(
    "timescale_hypertable_size_bytes",
    "gauge",
    "Total size of the hypertable: every chunk's data, indexes and TOAST, compressed or not.",
    T,
    "hypertable",
)
JOB_LABELS = (T, "job_id", "proc", "hypertable")
JOB_LAST_RUN_OK = family(
    "timescale_job_last_run_success",
    "gauge",
    "1 if the background job's last run succeeded, 0 if it failed (absent before a first run).",
    *JOB_LABELS,
)
JOB_RUNS = family("timescale_job_runs_total", "counter", "Runs of the background job.", *JOB_LABELS)
JOB_FAILURES = family(
    "timescale_job_failures_total", "counter", "Failed runs of the background job.", *JOB_LABELS
)
JOB_LAST_SUCCESS = family(
    "timescale_job_last_success_timestamp_seconds",
    "gauge",
    "Unix time the background job last finished successfully.",
    *JOB_LABELS,
)
JOB_NEXT_START = family(
    "timescale_job_next_start_timestamp_seconds",
    "gauge",
    "Unix time the background job is next scheduled to start.",
    *JOB_LABELS,
)
JOB_PAUSED = family(
    "timescale_job_paused",
    "gauge",
    "1 if the background job is not scheduled (paused), else 0.",
    *JOB_LABELS,
)
JOB_RUNNING = family(
    "timescale_job_running", "gauge", "1 while the background job runs, else 0.", *JOB_LABELS
)

FAMILIES = (
    INFO,
    EXTENSION_INSTALLED,
    ROUNDTRIP,
    START_TIME,
    IN_RECOVERY,
    CONNECTIONS,
    MAX_CONNECTIONS,
    RESERVED_CONNECTIONS,
    OLDEST_TRANSACTION,
    OLDEST_IDLE_IN_TRANSACTION,
    DATABASE_SIZE,
    XID_AGE,
    COMMITS,
    ROLLBACKS,
    DEADLOCKS,
    CONFLICTS,
    REPLICAS,
    REPLICAS_STREAMING,
    PRIMARY_REPLAY_LAG,
    PRIMARY_REPLAY_LAG_BYTES,
    INACTIVE_SLOTS,
    SLOT_RETAINED_BYTES,
    STANDBY_REPLAY_LAG,
    STANDBY_REPLAY_LAG_BYTES,
    STANDBY_LAST_REPLAY,
    STANDBY_RECEIVER_STREAMING,
    TABLE_QUERY_OK,
    TABLE_HAS_ROWS,
    TABLE_NEWEST,
    TABLE_SLA,
    TABLE_WITHIN_SLA,
    HYPERTABLE_CHUNKS,
    HYPERTABLE_COMPRESSED_CHUNKS,
    HYPERTABLE_COMPRESSION_ENABLED,
    HYPERTABLE_SIZE,
    JOB_LAST_RUN_OK,
    JOB_RUNS,
    JOB_FAILURES,
    JOB_LAST_SUCCESS,
    JOB_NEXT_START,
    JOB_PAUSED,
    JOB_RUNNING,
)
