"""Backups: last successful backup, size, duration, count inside the retention
window, checksum of the newest backup, pgBackRest stanza and WAL archive, restore
drills, and one RPO estimate per backup set.

One target is one backup set; its ``source`` is a directory of backups (JSON
manifests or bare files), ``pgbackrest info`` (run or saved) or restore-drill
records. Every subprocess and file operation is bounded by the run's deadline,
and what one run reads (manifests, drill records, saved or live pgBackRest output,
a command's stderr) by the target's ``response_budget`` (default 32 MiB); the
checksum's reading is bounded by ``checksum.bytes_per_run`` instead. How a
hostile path or command fails: ``backup_io``.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from ...budget import ReadBudget
from ...file_io import (
    BlockingIO,
    Listing,
    PendingHash,
    file_error,
    file_identity,
    file_type,
    list_files,
    read_limited,
    run_command,
)
from ...model import Duration, StrictModel, TargetBase
from ...probe import KindRuntime, ProbeContext, ProbeError, ProbeKind, ProbeResult, ProbeState
from . import metrics as M
from .sources import (
    Backup,
    Drill,
    StanzaInfo,
    parse_drill,
    parse_manifest,
    parse_pgbackrest,
    wal_position,
)

MiB = 1 << 20
RESPONSE_BUDGET = 32 * MiB
"""The kind's default ``response_budget``: twice the default ``max_output_bytes``."""
_STANZA_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"


class DirectorySource(StrictModel):
    """A directory of backups: one JSON manifest per backup, or bare files."""

    type: Literal["directory"]
    path: Path
    manifests: str | None = None
    """Glob (relative to ``path``) of manifest files; default ``*.manifest.json``."""
    files: str | None = None
    """Glob of bare backup files (no manifests): finish = mtime, size = file size."""
    recovery_point: Literal["finish", "start"] = "finish"
    """Which end of the newest backup the RPO counts from; ``start`` for snapshot
    dumps such as pg_dump, whose data is as of their start."""
    bare_type: Literal["full", "diff", "incr"] = "full"
    min_size_bytes: int = Field(default=1, ge=0)
    """Bare files smaller than this count as failed backups."""
    max_entries: int = Field(default=10000, ge=1)
    max_manifest_bytes: int = Field(default=MiB, ge=64)

    @model_validator(mode="after")
    def _one_mode(self) -> DirectorySource:
        if self.manifests is not None and self.files is not None:
            raise ValueError("give manifests or files, not both")
        return self

    @property
    def glob(self) -> str:
        """The effective glob."""
        return self.files or self.manifests or "*.manifest.json"


class PgBackRestSource(StrictModel):
    """``pgbackrest info --output=json`` for one stanza, run or read from a file."""

    type: Literal["pgbackrest"]
    stanza: str = Field(pattern=_STANZA_PATTERN)
    command: list[str] | None = Field(default=None, min_length=1)
    """Program and leading arguments; ``--stanza=S --output=json info`` is appended."""
    output_file: Path | None = None
    """Read this saved output instead of running a command."""
    command_timeout: Duration | None = None
    """Defaults to the run's remaining deadline."""
    repo_path: Path | None = None
    """A local (posix) repository: gives the time the newest WAL segment was archived."""
    wal_segment_size: int = 16 * MiB
    max_output_bytes: int = Field(default=16 * MiB, ge=1024)

    @model_validator(mode="after")
    def _one_input(self) -> PgBackRestSource:
        if self.command is not None and self.output_file is not None:
            raise ValueError("give command or output_file, not both")
        return self

    @field_validator("wal_segment_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value < MiB or value > 1024 * MiB or value & (value - 1):
            raise ValueError("must be a power of two between 1 MiB and 1 GiB")
        return value

    @property
    def argv(self) -> list[str]:
        """The full command line."""
        return [
            *(self.command or ["pgbackrest"]),
            f"--stanza={self.stanza}",
            "--output=json",
            "info",
        ]


class RestoreDrillSource(StrictModel):
    """Restore-drill records: one JSON file, or a directory of them."""

    type: Literal["restore_drill"]
    path: Path
    glob: str = "*.json"
    """Record files inside ``path`` when it is a directory."""
    max_records: int = Field(default=1000, ge=1)
    max_record_bytes: int = Field(default=MiB, ge=64)


class ChecksumConfig(StrictModel):
    """Verification of the newest backup's checksum (directory manifests)."""

    enabled: bool = True
    bytes_per_run: int = Field(default=64 * MiB, ge=4096)
    """At most this many bytes are hashed per run; larger files resume next run."""
    reverify_after: Duration = 86400.0
    """Hash an unchanged file again after this long (catches bit rot)."""


SOURCE_TYPES = ("directory", "pgbackrest", "restore_drill")


def _source_tag(value: Any) -> str | None:
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return tag if tag in SOURCE_TYPES else None


Source = Annotated[
    Annotated[DirectorySource, Tag("directory")]
    | Annotated[PgBackRestSource, Tag("pgbackrest")]
    | Annotated[RestoreDrillSource, Tag("restore_drill")],
    Discriminator(
        _source_tag,
        custom_error_type="source_type",
        custom_error_message="expected a mapping with type: directory, pgbackrest or restore_drill",
    ),
]


class BackupTarget(TargetBase):
    """One backup set."""

    source: Source
    retention: Duration = 7 * 86400.0
    """Window over which successful backups are counted."""
    checksum: ChecksumConfig = Field(default_factory=ChecksumConfig)
    rpo_objective: Duration = 26 * 3600.0
    """The largest acceptable data loss: how old the recovery point may get."""
    restore_drill_max_interval: Duration = 8 * 86400.0
    """The longest acceptable time between two successful restore drills."""
    min_backups: int = Field(default=1, ge=0)
    """Successful backups (all types together) expected inside the retention window."""


@dataclass(slots=True)
class Verified:
    """The outcome of a completed checksum verification."""

    identity: tuple[Any, ...]
    checksum: tuple[str, str]
    ok: bool
    at: float


class BackupState(ProbeState):
    """Parsed manifests and drill records by file identity, and checksum progress."""

    def __init__(self, target: BackupTarget) -> None:
        self.budget = ReadBudget(target.response_budget or RESPONSE_BUDGET)
        self.io = BlockingIO()
        self.parsed: dict[Path, tuple[tuple[Any, ...], Backup | Drill | None]] = {}
        self.pending: PendingHash | None = None
        self.verified: Verified | None = None
        self.best_drill_success: float | None = None

    async def aclose(self) -> None:
        self.parsed.clear()
        self.pending = None


# --- blocking helpers (run on the I/O worker) ---------------------------------


def _read_new(
    entries: Listing, known: dict[Path, Any], limit: int, budget: ReadBudget
) -> dict[Path, bytes | ProbeError]:
    """The bytes of entries not parsed before, or why one could not be read.

    Going over the run's budget fails the whole read: it bounds them all."""
    out: dict[Path, bytes | ProbeError] = {}
    for path, ident in entries:
        cached = known.get(path)
        if cached is not None and cached[0] == ident:
            continue
        try:
            out[path] = read_limited(path, limit, budget)
        except FileNotFoundError:
            out[path] = ProbeError("other", f"{path.name} was removed while being read")
        except ProbeError as exc:
            if budget.exceeded:
                raise
            out[path] = exc
    return out


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _read_with_mtime(path: Path, limit: int, budget: ReadBudget) -> tuple[bytes, float]:
    try:
        mtime = path.stat().st_mtime
        return read_limited(path, limit, budget), mtime
    except FileNotFoundError:
        raise ProbeError("other", f"{path} does not exist") from None
    except OSError as exc:
        raise file_error(exc, path.name) from None


def _newest_wal_mtime(segment_dir: Path, segment: str) -> float | None:
    times = [st.st_mtime for p in segment_dir.glob(f"{segment}-*") if (st := _stat(p))]
    return max(times) if times else None


# --- parsing with a cache keyed by file identity -----------------------------


async def _parse_files(
    state: BackupState,
    entries: Listing,
    limit: int,
    parse: Callable[[bytes, Path], Any],
    strict: bool,
) -> tuple[list[Any], int]:
    """Parse each entry (reusing earlier results); returns (records, invalid count).

    With ``strict`` an unreadable or malformed file fails the run instead.
    """
    raw = await state.io.call(_read_new, entries, state.parsed, limit, state.budget)
    keep = {p for p, _ in entries}
    for path in [p for p in state.parsed if p not in keep]:
        del state.parsed[path]
    for path, ident in entries:
        if path not in raw:
            continue
        data = raw[path]
        if isinstance(data, ProbeError) and strict:
            raise data
        try:
            rec = None if isinstance(data, ProbeError) else parse(data, path)
        except ProbeError:
            if strict:
                raise
            rec = None
        state.parsed[path] = (ident, rec)
    records = [state.parsed[p][1] for p, _ in entries]
    return [r for r in records if r is not None], sum(r is None for r in records)


def _manifest_at(data: bytes, path: Path) -> Backup:
    """A manifest, its ``file`` made a path beside the manifest."""
    backup = parse_manifest(data, path.name)
    return replace(backup, file=str(path.parent / (backup.file or "")))


def _drill_at(data: bytes, path: Path) -> Drill:
    return parse_drill(data, path.name)


# --- series shared by directory and pgBackRest sources -----------------------


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
        if not mine:
            continue
        last = max(mine, key=lambda b: b.finish or 0.0)
        r.add(M.LAST_SUCCESS, last.finish, name, typ)
        r.add(M.LAST_SIZE, last.size, name, typ)
        r.add(M.LAST_REPO_SIZE, last.repo_size, name, typ)
        if last.start is not None and last.finish is not None:
            r.add(M.LAST_DURATION, max(0.0, last.finish - last.start), name, typ)
    dated = [b for b in backups if b.when is not None and not b.running]
    if dated:
        newest = max(dated, key=lambda b: b.when or 0.0)
        r.add(M.LAST_ATTEMPT_OK, newest.ok, name)
        r.add(M.LAST_ATTEMPT, newest.when, name)
    return max((b.finish for b in good if b.finish is not None), default=None)


def _recovery_point(r: ProbeResult, name: str, point: float | None, now: float) -> None:
    if point is None:
        return
    r.add(M.RECOVERY_POINT, point, name)
    r.add(M.RPO, max(0.0, now - point), name)


# --- directory source ----------------------------------------------------------


async def _directory(
    r: ProbeResult, target: BackupTarget, src: DirectorySource, ctx: ProbeContext[BackupState]
) -> None:
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
    backups, invalid = await _parse_files(
        state, entries, src.max_manifest_bytes, _manifest_at, strict=False
    )
    r.add(M.INVALID_MANIFESTS, invalid, target.name)
    r.add(M.IN_PROGRESS, any(b.running for b in backups), target.name)
    newest = _summary(r, target, backups, now)
    if src.recovery_point == "start":
        good = [b for b in backups if b.ok and b.finish is not None]
        newest = max(good, key=lambda b: b.finish or 0.0).start if good else None
    _recovery_point(r, target.name, newest, now)
    if target.checksum.enabled:
        candidates = [b for b in backups if b.ok and b.checksum and b.finish is not None]
        if candidates:
            last = max(candidates, key=lambda b: b.finish or 0.0)
            await _verify(r, target, last, ctx)


async def _verify(
    r: ProbeResult,
    target: BackupTarget,
    backup: Backup,
    ctx: ProbeContext[BackupState],
) -> None:
    """Advance (or start) the checksum verification of ``backup``'s file."""
    assert backup.file is not None and backup.checksum is not None
    state, name, now = ctx.state, target.name, ctx.now()
    path = Path(backup.file)
    algo, expected = backup.checksum
    st = await state.io.call(_stat, path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        st = None  # a FIFO or a directory in its place: the backup is not there
    ident: tuple[Any, ...] = ("missing",) if st is None else file_identity(st)
    done = state.verified
    if (
        done is not None
        and (done.identity, done.checksum) == (ident, backup.checksum)
        and now - done.at < target.checksum.reverify_after
    ):
        _checksum_series(r, name, done, 1.0)
        return
    pending = state.pending
    if pending is None or (pending.identity, pending.path) != (ident, path):
        pending = None
        if st is None or (backup.size is not None and st.st_size != backup.size):
            state.verified = Verified(ident, backup.checksum, False, now)
            state.pending = None
            _checksum_series(r, name, state.verified, 1.0)
            return
        pending = PendingHash(path, ident, algo, expected, st.st_size)
        state.pending = pending
    try:
        await state.io.call(pending.advance, target.checksum.bytes_per_run)
    except (OSError, ProbeError):
        state.pending = None  # replaced or truncated meanwhile: start over next run
        if done is not None:
            _checksum_series(r, name, done, None)
        return
    if pending.done:
        state.verified = Verified(ident, backup.checksum, pending.matches(), ctx.now())
        state.pending = None
        _checksum_series(r, name, state.verified, 1.0)
        return
    if done is not None:
        _checksum_series(r, name, done, None)
    r.add(M.CHECKSUM_PROGRESS, pending.offset / max(pending.size, 1), name)


def _checksum_series(r: ProbeResult, name: str, v: Verified, progress: float | None) -> None:
    r.add(M.CHECKSUM_OK, v.ok, name)
    r.add(M.CHECKSUM_VERIFIED, v.at, name)
    r.add(M.CHECKSUM_PROGRESS, progress, name)


# --- pgBackRest source ---------------------------------------------------------


async def _pgbackrest(
    r: ProbeResult, target: BackupTarget, src: PgBackRestSource, ctx: ProbeContext[BackupState]
) -> None:
    state, name, now = ctx.state, target.name, ctx.now()
    if src.output_file is not None:
        raw, modified = await state.io.call(
            _read_with_mtime, src.output_file, src.max_output_bytes, state.budget
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
    archived = await state.io.call(_newest_wal_mtime, seg_dir, info.wal_max)
    r.add(M.WAL_LAST_ARCHIVED, archived, name)
    return archived


# --- restore drills ------------------------------------------------------------


def _drill_entries(src: RestoreDrillSource) -> Listing:
    try:
        st = src.path.stat()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise file_error(exc, str(src.path)) from None
    if stat.S_ISREG(st.st_mode):
        return [(src.path, file_identity(st))]
    if not stat.S_ISDIR(st.st_mode):
        what = f"{src.path} is {file_type(st.st_mode)}"
        raise ProbeError("config", f"{what}, not a record file or a directory of them")
    return list_files(src.path, src.glob, src.max_records)


async def _drills(
    r: ProbeResult, target: BackupTarget, src: RestoreDrillSource, ctx: ProbeContext[BackupState]
) -> None:
    state, name = ctx.state, target.name
    try:
        entries = await state.io.call(_drill_entries, src)
    except FileNotFoundError:
        raise ProbeError("other", f"restore-drill path {src.path} does not exist") from None
    drills, _ = await _parse_files(state, entries, src.max_record_bytes, _drill_at, strict=True)
    r.add(M.DRILL_RECORDS, len(drills), name)
    if not drills:
        return
    last = max(drills, key=lambda d: d.timestamp)
    successes = [d.timestamp for d in drills if d.ok]
    if state.best_drill_success is not None:
        successes.append(state.best_drill_success)
    best = max(successes, default=None)
    state.best_drill_success = best
    r.add(M.DRILL_LAST, last.timestamp, name)
    r.add(M.DRILL_LAST_OK, last.ok, name)
    r.add(M.DRILL_LAST_SUCCESS, best, name)
    r.add(M.DRILL_DURATION, last.duration, name)
    r.add(M.DRILL_ROWS, last.rows_verified, name)
    r.add(M.DRILL_CHECKSUMS, last.checksums_verified, name)
    r.add(M.DRILL_CHECKSUMS_FAILED, last.checksums_failed, name)


def _objective_series(r: ProbeResult, target: BackupTarget) -> None:
    """The set's configured objectives, exported beside the data for the rules."""
    r.add(M.RPO_OBJECTIVE, target.rpo_objective, target.name)
    r.add(M.DRILL_MAX_INTERVAL, target.restore_drill_max_interval, target.name)
    r.add(M.MIN_BACKUPS, target.min_backups, target.name)


async def probe(target: BackupTarget, ctx: ProbeContext[BackupState]) -> ProbeResult:
    """Probe one backup set."""
    r = ProbeResult()
    _objective_series(r, target)
    src = target.source
    if isinstance(src, DirectorySource):
        await _directory(r, target, src, ctx)
    elif isinstance(src, PgBackRestSource):
        await _pgbackrest(r, target, src, ctx)
    else:
        await _drills(r, target, src, ctx)
    return r


RUNTIME: KindRuntime[BackupTarget, BackupState] = KindRuntime(probe, BackupState)

KIND: ProbeKind[BackupTarget, BackupState] = ProbeKind(
    name="backups",
    target_model=BackupTarget,
    families=M.FAMILIES,
    load=lambda: RUNTIME,
    address_field="name",
    example_address="backup-set",
    response_budget=RESPONSE_BUDGET,
)
