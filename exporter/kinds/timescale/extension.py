"""What the timescaledb extension adds: hypertables' chunks, compression and size,
and its background jobs (policies and user-defined actions)."""

from __future__ import annotations

from typing import Any

from ...probe import ProbeResult
from . import metrics as M
from . import sql as SQL
from .config import TimescaleTarget


async def hypertables(r: ProbeResult, target: TimescaleTarget, conn: Any, ext: str) -> None:
    """Up to ``max_hypertables``, from the views in the extension's schema ``ext``."""
    name = target.name
    for row in await conn.fetch(SQL.hypertables(ext), target.max_hypertables):
        ht = f"{row['hypertable_schema']}.{row['hypertable_name']}"
        r.add(M.HYPERTABLE_CHUNKS, row["num_chunks"], name, ht)
        r.add(M.HYPERTABLE_COMPRESSED_CHUNKS, row["compressed_chunks"], name, ht)
        r.add(M.HYPERTABLE_COMPRESSION_ENABLED, row["compression_enabled"], name, ht)
        r.add(M.HYPERTABLE_SIZE, row["total_bytes"], name, ht)


async def jobs(r: ProbeResult, target: TimescaleTarget, conn: Any) -> None:
    """Up to ``max_jobs``; a job that never ran has its state but no run results."""
    for row in await conn.fetch(SQL.JOBS, target.max_jobs):
        labels = (target.name, str(row["job_id"]), row["proc_name"], row["hypertable"])
        status = row["last_run_status"]
        r.add(M.JOB_LAST_RUN_OK, None if status is None else status == "Success", *labels)
        r.add(M.JOB_RUNS, row["total_runs"], *labels)
        r.add(M.JOB_FAILURES, row["total_failures"], *labels)
        r.add(M.JOB_LAST_SUCCESS, row["last_success"], *labels)
        r.add(M.JOB_NEXT_START, row["next_start"], *labels)
        r.add(M.JOB_PAUSED, not row["scheduled"], *labels)
        r.add(M.JOB_RUNNING, row["job_status"] == "Running", *labels)
