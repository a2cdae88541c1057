"""The collection for each source: what a directory of backups, ``pgbackrest info``
and restore-drill records say, as the kind's series.

Every source reports the set's objectives; the directory and pgBackRest sources
also report per-type summaries and the recovery point (the RPO).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ...commands import run_command
from ...file_io import list_files
from ...probe import ProbeContext, ProbeError, ProbeResult
from . import metrics as M
from .checksum import verify
from .config import BackupTarget, DirectorySource, PgBackRestSource, RestoreDrillSource
from .files import (
    drill_at,
    drill_entries,
    manifest_at,
    newest_wal_mtime,
    parse_files,
    read_with_mtime,
)
from .sources import Backup, Drill, StanzaInfo, parse_pgbackrest, wal_position

if TYPE_CHECKING:
    from .probe import BackupState

# --- series shared by the sources ----------------------------------------------


def objective_series(r: ProbeResult, target: BackupTarget) -> None:
    """The set's configured objectives, exported beside the data for the rules."""
    r.add(M.RPO_OBJECTIVE, target.rpo_objective, target.name)
    r.add(M.DRILL_MAX_INTERVAL, target.restore_drill_max_interval, target.name)
    r.add(M.MIN_BACKUPS, target.min_backups, target.name)


def _summary(
    r: ProbeResult, target: BackupTarget, backups: list[Backup], now: float
) -> float | None:
    """Per-type last success, size, duration, retention count; returns the newest finish."""
    name = target.name
    r.add(M.RETENTION_WINDOW, target.retention, name)
    good = [b for b in backups if b.ok and b.finish is not None]
    cutoff = now - target.retention
    types = {"full"} | {b.type for b in backups}
    for typ in sorted(types):
        mine = [b for b in good if b.type == typ]
        r.add(M.IN_RETENTION, sum((b.finish or 0.0) >= cutoff for b in mine), name, typ)
        if mine:
            _last_success(r, name, typ, max(mine, key=lambda b: b.finish or 0.0))
    dated = [b for b in backups if b.when is not None and not b.running]
    if dated:
        newest = max(dated, key=lambda b: b.when or 0.0)
        r.add(M.LAST_ATTEMPT_OK, newest.ok, name)
        r.add(M.LAST_ATTEMPT, newest.when, name)
    return max((b.finish for b in good if b.finish is not None), default=None)


def _last_success(r: ProbeResult, name: str, typ: str, last: Backup) -> None:
    r.add(M.LAST_SUCCESS, last.finish, name, typ)
    r.add(M.LAST_SIZE, last.size, name, typ)
    r.add(M.LAST_REPO_SIZE, last.repo_size, name, typ)
    if last.start is not None and last.finish is not None:
        r.add(M.LAST_DURATION, max(0.0, last.finish - last.start), name, typ)


def _recovery_point(r: ProbeResult, name: str, point: float | None, now: float) -> None:
    if point is None:
        return
    r.add(M.RECOVERY_POINT, point, name)
    r.add(M.RPO, max(0.0, now - point), name)


# --- directory source ----------------------------------------------------------


async def directory(
    r: ProbeResult, target: BackupTarget, src: DirectorySource, ctx: ProbeContext[BackupState]
) -> None:
    """A directory of manifests (with the newest backup's checksum), or of bare files."""
    state, now = ctx.state, ctx.now()
    entries = await state.io.call(list_files, src.path, src.glob, src.max_entries)
    if src.files is not None:
        backups = [
            Backup(src.bare_type, ident[2] >= src.min_size_bytes, None, ident[3] / 1e9, ident[2])
            for _, ident in entries
        ]
        newest = _summary(r, target, backups, now)
        _recovery_point(r, target.name, newest, now)
        return
    backups, invalid = await parse_files(
        state, entries, src.max_manifest_bytes, manifest_at, strict=False
    )
    r.add(M.INVALID_MANIFESTS, invalid, target.name)
    r.add(M.IN_PROGRESS, any(b.running for b in backups), target.name)
    newest = _summary(r, target, backups, now)
    good = [b for b in backups if b.ok and b.finish is not None]
    if src.recovery_point == "start":
        newest = max(good, key=lambda b: b.finish or 0.0).start if good else None
    _recovery_point(r, target.name, newest, now)
    candidates = [b for b in good if b.checksum]
    if target.checksum.enabled and candidates:
        await verify(r, target, max(candidates, key=lambda b: b.finish or 0.0), ctx)


# --- pgBackRest source ---------------------------------------------------------


async def pgbackrest(
    r: ProbeResult, target: BackupTarget, src: PgBackRestSource, ctx: ProbeContext[BackupState]
) -> None:
    """One stanza of ``pgbackrest info``: status, backups, the WAL archive."""
    state, name, now = ctx.state, target.name, ctx.now()
    if src.output_file is not None:
        raw, modified = await state.io.call(
            read_with_mtime, src.output_file, src.max_output_bytes, state.budget
        )
        r.add(M.OUTPUT_MODIFIED, modified, name)
    else:
        remaining = ctx.deadline - asyncio.get_running_loop().time()
        timeout = min(src.command_timeout or remaining, remaining)
        raw = await run_command(src.argv, timeout, src.max_output_bytes, state.budget)
    info = parse_pgbackrest(raw, src.stanza)
    r.add(M.STANZA_STATUS, info.status_code, name)
    r.add(M.STANZA_OK, info.status_code == 0, name)
    r.add(M.IN_PROGRESS, info.backup_running, name)
    newest = _summary(r, target, info.backups, now)
    wal_time = await _wal_series(r, name, src, info, state)
    points = [p for p in (newest, wal_time) if p is not None]
    _recovery_point(r, name, max(points) if points else None, now)


async def _wal_series(
    r: ProbeResult, name: str, src: PgBackRestSource, info: StanzaInfo, state: BackupState
) -> float | None:
    """The WAL archive's range; returns when its newest segment was archived."""
    if info.wal_min is None or info.wal_max is None:
        return None
    size = src.wal_segment_size
    r.add(M.WAL_MIN, wal_position(info.wal_min, size)[1], name)
    timeline, start = wal_position(info.wal_max, size)
    r.add(M.WAL_MAX, start + size, name)
    r.add(M.WAL_TIMELINE, timeline, name)
    if src.repo_path is None or info.archive_id is None:
        return None
    seg_dir = src.repo_path / "archive" / src.stanza / info.archive_id / info.wal_max[:16]
    archived = await state.io.call(newest_wal_mtime, seg_dir, info.wal_max)
    r.add(M.WAL_LAST_ARCHIVED, archived, name)
    return archived


# --- restore drills ------------------------------------------------------------


async def drills(
    r: ProbeResult, target: BackupTarget, src: RestoreDrillSource, ctx: ProbeContext[BackupState]
) -> None:
    """Restore-drill records: the newest drill and the newest success ever seen."""
    state, name = ctx.state, target.name
    try:
        entries = await state.io.call(drill_entries, src)
    except FileNotFoundError:
        raise ProbeError("other", f"restore-drill path {src.path} does not exist") from None
    records, _ = await parse_files(state, entries, src.max_record_bytes, drill_at, strict=True)
    r.add(M.DRILL_RECORDS, len(records), name)
    if not records:
        return
    successes = [d.timestamp for d in records if d.ok]
    if state.best_drill_success is not None:
        successes.append(state.best_drill_success)
    state.best_drill_success = max(successes, default=None)
    _drill_series(r, name, max(records, key=lambda d: d.timestamp), state.best_drill_success)


def _drill_series(r: ProbeResult, name: str, last: Drill, best: float | None) -> None:
    r.add(M.DRILL_LAST, last.timestamp, name)
    r.add(M.DRILL_LAST_OK, last.ok, name)
    r.add(M.DRILL_LAST_SUCCESS, best, name)
    r.add(M.DRILL_DURATION, last.duration, name)
    r.add(M.DRILL_ROWS, last.rows_verified, name)
    r.add(M.DRILL_CHECKSUMS, last.checksums_verified, name)
    r.add(M.DRILL_CHECKSUMS_FAILED, last.checksums_failed, name)
