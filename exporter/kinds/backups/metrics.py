"""Backup families. ``target`` is the configured backup set; ``type`` is full, diff,
incr or other. Backup names and labels never become label values."""

from __future__ import annotations

from ...catalogue.base import family

T = "target"
TYPE = "type"

LAST_SUCCESS = family(
    "backup_last_success_timestamp_seconds",
    "gauge",
    "Unix time the newest successful backup of this type finished.",
    T,
    TYPE,
)
LAST_SIZE = family(
    "backup_last_size_bytes",
    "gauge",
    "Size of the newest successful backup of this type (database size for pgBackRest).",
    T,
    TYPE,
)
LAST_REPO_SIZE = family(
    "backup_last_repository_size_bytes",
    "gauge",
    "pgBackRest: bytes the newest successful backup of this type adds to the repository.",
    T,
    TYPE,
)
LAST_DURATION = family(
    "backup_last_duration_seconds",
    "gauge",
    "Finish minus start of the newest successful backup of this type.",
    T,
    TYPE,
)
IN_RETENTION = family(
    "backup_retention_window_backups",
    "gauge",
    "Successful backups of this type that finished inside the configured retention window.",
    T,
    TYPE,
)
RETENTION_WINDOW = family(
    "backup_retention_window_seconds",
    "gauge",
    "The configured retention window that backup_retention_window_backups counts over.",
    T,
)
LAST_ATTEMPT_OK = family(
    "backup_last_attempt_success",
    "gauge",
    "1 if the newest finished backup (of any type) succeeded, else 0; running ones are "
    "not counted. pgBackRest lists only completed backups (0 there means page-checksum "
    "errors): alert on the age of the last success to catch failed runs.",
    T,
)
LAST_ATTEMPT = family(
    "backup_last_attempt_timestamp_seconds",
    "gauge",
    "Unix time the newest finished backup, successful or not, finished (or started, "
    "if it records no finish).",
    T,
)
INVALID_MANIFESTS = family(
    "backup_invalid_manifests",
    "gauge",
    "Directory source: manifests that could not be read or parsed and were skipped.",
    T,
)
CHECKSUM_OK = family(
    "backup_checksum_ok",
    "gauge",
    "1 if the newest verified backup file matched its manifest checksum, 0 on a mismatch "
    "or a missing file; absent until the first verification completes.",
    T,
)
CHECKSUM_VERIFIED = family(
    "backup_checksum_verified_timestamp_seconds",
    "gauge",
    "Unix time the last checksum verification completed.",
    T,
)
CHECKSUM_PROGRESS = family(
    "backup_checksum_progress_ratio",
    "gauge",
    "Fraction of the newest backup file hashed so far by the verification in progress "
    "(1 once complete); verification reads at most checksum.bytes_per_run per run.",
    T,
)
STANZA_STATUS = family(
    "backup_pgbackrest_stanza_status_code",
    "gauge",
    "pgBackRest stanza status code (0 ok, 1 missing stanza path, 2 no valid backups, "
    "3 missing stanza data, 4 different cluster, 5 database mismatch, 6 lock, 99 other).",
    T,
)
STANZA_OK = family(
    "backup_pgbackrest_stanza_ok",
    "gauge",
    "1 if the pgBackRest stanza status is ok (code 0), else 0.",
    T,
)
IN_PROGRESS = family(
    "backup_in_progress",
    "gauge",
    "1 while a backup is running: pgBackRest holds the stanza's backup lock, or a manifest "
    "says status running.",
    T,
)
OUTPUT_MODIFIED = family(
    "backup_pgbackrest_output_modified_timestamp_seconds",
    "gauge",
    "Unix time the saved pgBackRest info output file was last written (output_file only); "
    "alert when whatever refreshes it stops.",
    T,
)
WAL_MIN = family(
    "backup_pgbackrest_wal_archive_min_bytes",
    "gauge",
    "Start of the oldest WAL segment in the archive, as a WAL position in bytes "
    "(timeline excluded; assumes the configured WAL segment size).",
    T,
)
WAL_MAX = family(
    "backup_pgbackrest_wal_archive_max_bytes",
    "gauge",
    "End of the newest WAL segment in the archive, as a WAL position in bytes; "
    "it should keep moving on a busy primary.",
    T,
)
WAL_TIMELINE = family(
    "backup_pgbackrest_wal_archive_timeline",
    "gauge",
    "Timeline of the newest WAL segment in the archive.",
    T,
)
WAL_LAST_ARCHIVED = family(
    "backup_pgbackrest_wal_last_archived_timestamp_seconds",
    "gauge",
    "Unix time the newest archived WAL segment was written to the repository "
    "(needs repo_path; absent otherwise).",
    T,
)
RECOVERY_POINT = family(
    "backup_recovery_point_timestamp_seconds",
    "gauge",
    "Newest point in time a restore could reach now: the later of the last successful "
    "backup's finish (or start, if so configured) and (pgBackRest with repo_path) the last "
    "archived WAL segment.",
    T,
)
RPO = family(
    "backup_rpo_seconds",
    "gauge",
    "Estimated seconds of data a restore now would lose: probe time minus "
    "backup_recovery_point_timestamp_seconds.",
    T,
)
RPO_OBJECTIVE = family(
    "backup_rpo_objective_seconds",
    "gauge",
    "The backup set's configured recovery point objective (the largest acceptable RPO).",
    T,
)
DRILL_MAX_INTERVAL = family(
    "backup_restore_drill_max_interval_seconds",
    "gauge",
    "The configured longest acceptable time between two successful restore drills.",
    T,
)
MIN_BACKUPS = family(
    "backup_retention_min_backups",
    "gauge",
    "The configured minimum of successful backups (all types) inside the retention window.",
    T,
)
DRILL_RECORDS = family(
    "backup_restore_drill_records",
    "gauge",
    "Restore-drill records found (0: no drill has ever reported; alert on it).",
    T,
)
DRILL_LAST_SUCCESS = family(
    "backup_restore_drill_last_success_timestamp_seconds",
    "gauge",
    "Unix time of the newest restore drill that succeeded.",
    T,
)
DRILL_LAST = family(
    "backup_restore_drill_last_timestamp_seconds",
    "gauge",
    "Unix time of the newest restore drill, whatever its result.",
    T,
)
DRILL_LAST_OK = family(
    "backup_restore_drill_last_success",
    "gauge",
    "1 if the newest restore drill succeeded, else 0.",
    T,
)
DRILL_DURATION = family(
    "backup_restore_drill_last_duration_seconds",
    "gauge",
    "How long the newest restore drill took.",
    T,
)
DRILL_ROWS = family(
    "backup_restore_drill_last_rows_verified",
    "gauge",
    "Rows the newest restore drill verified in the restored database.",
    T,
)
DRILL_CHECKSUMS = family(
    "backup_restore_drill_last_checksums_verified",
    "gauge",
    "Checksums the newest restore drill verified.",
    T,
)
DRILL_CHECKSUMS_FAILED = family(
    "backup_restore_drill_last_checksums_failed",
    "gauge",
    "Checksums that did not match in the newest restore drill.",
    T,
)

FAMILIES = (
    LAST_SUCCESS,
    LAST_SIZE,
    LAST_REPO_SIZE,
    LAST_DURATION,
    IN_RETENTION,
    RETENTION_WINDOW,
    LAST_ATTEMPT_OK,
    LAST_ATTEMPT,
    INVALID_MANIFESTS,
    CHECKSUM_OK,
    CHECKSUM_VERIFIED,
    CHECKSUM_PROGRESS,
    STANZA_STATUS,
    STANZA_OK,
    IN_PROGRESS,
    OUTPUT_MODIFIED,
    WAL_MIN,
    WAL_MAX,
    WAL_TIMELINE,
    WAL_LAST_ARCHIVED,
    RECOVERY_POINT,
    RPO,
    RPO_OBJECTIVE,
    DRILL_MAX_INTERVAL,
    MIN_BACKUPS,
    DRILL_RECORDS,
    DRILL_LAST_SUCCESS,
    DRILL_LAST,
    DRILL_LAST_OK,
    DRILL_DURATION,
    DRILL_ROWS,
    DRILL_CHECKSUMS,
    DRILL_CHECKSUMS_FAILED,
)
