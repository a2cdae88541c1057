"""The backup set's files: manifests and drill records read and parsed once per file
identity, the saved ``pgbackrest info`` output and the WAL archive's newest segment.

The plain functions block and run on the target's I/O worker (``BlockingIO``);
what they read is charged to the run's response budget.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...budget import ReadBudget
from ...file_io import Listing, file_error, file_identity, file_type, list_files, read_limited
from ...probe import ProbeError
from .config import RestoreDrillSource
from .sources import Backup, Drill, parse_drill, parse_manifest

if TYPE_CHECKING:
    from .probe import BackupState

Parsed = dict[Path, tuple[tuple[Any, ...], Backup | Drill | None]]
"""Records by path, with the file identity they were parsed from (None: invalid)."""


# --- blocking helpers (run on the I/O worker) ---------------------------------


def _read_new(
    entries: Listing, known: Parsed, limit: int, budget: ReadBudget
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


def read_with_mtime(path: Path, limit: int, budget: ReadBudget) -> tuple[bytes, float]:
    """A saved output's bytes and modification time; a missing file is ``other``."""
    try:
        mtime = path.stat().st_mtime
        return read_limited(path, limit, budget), mtime
    except FileNotFoundError:
        raise ProbeError("other", f"{path} does not exist") from None
    except OSError as exc:
        raise file_error(exc, path.name) from None


def newest_wal_mtime(segment_dir: Path, segment: str) -> float | None:
    """When the newest copy of WAL ``segment`` reached the repository, if it did."""
    times = [st.st_mtime for p in segment_dir.glob(f"{segment}-*") if (st := _stat(p))]
    return max(times) if times else None


def drill_entries(src: RestoreDrillSource) -> Listing:
    """The record file, or the newest ``max_records`` records in the directory.

    FileNotFoundError passes through (the caller names the path)."""
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


# --- parsing with a cache keyed by file identity -----------------------------


async def parse_files(
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
        if path in raw:
            state.parsed[path] = (ident, _parse_one(raw[path], path, parse, strict))
    records = [state.parsed[p][1] for p, _ in entries]
    return [r for r in records if r is not None], sum(r is None for r in records)


def _parse_one(
    data: bytes | ProbeError, path: Path, parse: Callable[[bytes, Path], Any], strict: bool
) -> Any:
    """``parse(data)``; None for a file that could not be read or parsed, unless
    ``strict`` (then its failure is raised)."""
    if isinstance(data, ProbeError):
        if strict:
            raise data
        return None
    try:
        return parse(data, path)
    except ProbeError:
        if strict:
            raise
        return None


def manifest_at(data: bytes, path: Path) -> Backup:
    """A manifest, its ``file`` made a path beside the manifest."""
    backup = parse_manifest(data, path.name)
    return replace(backup, file=str(path.parent / (backup.file or "")))


def drill_at(data: bytes, path: Path) -> Drill:
    """A restore-drill record."""
    return parse_drill(data, path.name)
