"""Parsers for the backup probe's three sources: backup manifests, the output of
``pgbackrest info --output=json`` and restore-drill records.

Each turns raw bytes into plain records and raises ProbeError("protocol") for
anything it cannot understand. They do no I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from ...probe import ProbeError

BACKUP_TYPES = ("full", "diff", "incr")
CHECKSUM_ALGORITHMS = frozenset(hashlib.algorithms_guaranteed - {"shake_128", "shake_256"})
_WAL_RE = re.compile(r"^[0-9A-F]{24}$")


@dataclass(frozen=True, slots=True)
class Backup:
    """One backup, whatever the source."""

    type: str
    ok: bool
    start: float | None
    finish: float | None
    size: float | None = None
    repo_size: float | None = None
    file: str | None = None
    checksum: tuple[str, str] | None = None
    """(algorithm, expected hex digest)."""
    running: bool = False

    @property
    def when(self) -> float | None:
        """The time that orders backups: finish, else start."""
        return self.finish if self.finish is not None else self.start


@dataclass(frozen=True, slots=True)
class StanzaInfo:
    """What ``pgbackrest info`` says about one stanza."""

    status_code: int
    backup_running: bool | None
    backups: list[Backup]
    wal_min: str | None
    wal_max: str | None
    archive_id: str | None


@dataclass(frozen=True, slots=True)
class Drill:
    """One restore-drill record."""

    timestamp: float
    ok: bool
    duration: float | None
    rows_verified: float | None
    checksums_verified: float | None
    checksums_failed: float | None


def load_json(raw: bytes, what: str) -> Any:
    """Decode JSON; ProbeError("protocol") if it is not valid."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProbeError("protocol", f"{what}: not valid JSON ({exc})") from None


def timestamp(value: Any, what: str) -> float:
    """Unix seconds from a number or an RFC 3339 string with a UTC offset."""
    if isinstance(value, bool):
        raise ProbeError("protocol", f"{what}: expected a timestamp")
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.timestamp()
    raise ProbeError("protocol", f"{what}: expected Unix seconds or RFC 3339 with an offset")


def _number(obj: dict[str, Any], key: str, what: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ProbeError("protocol", f"{what}: {key} must be a non-negative number")
    return float(value)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProbeError("protocol", f"{what}: expected a JSON object")
    return value


def backup_type(value: Any) -> str:
    """full, diff, incr, or other: the only values the ``type`` label takes."""
    return value if value in BACKUP_TYPES else "other"


def parse_manifest(raw: bytes, what: str) -> Backup:
    """A backup manifest (format in docs/backups.md)."""
    doc = _object(load_json(raw, what), what)
    status = doc.get("status")
    if status not in ("success", "failed", "running"):
        raise ProbeError("protocol", f"{what}: status must be success, failed or running")
    file = doc.get("file")
    if not isinstance(file, str) or not file or _escapes(file):
        raise ProbeError("protocol", f"{what}: file must name a backup file beside the manifest")
    start = timestamp(doc["start"], f"{what}: start") if doc.get("start") is not None else None
    finish = timestamp(doc["finish"], f"{what}: finish") if doc.get("finish") is not None else None
    if status == "success" and finish is None:
        raise ProbeError("protocol", f"{what}: a successful backup needs finish")
    if start is None and finish is None:
        raise ProbeError("protocol", f"{what}: needs start or finish")
    checksum = None
    if doc.get("checksum") is not None:
        ck = _object(doc["checksum"], f"{what}: checksum")
        algo, hexval = ck.get("algorithm"), ck.get("value")
        if not isinstance(algo, str) or not isinstance(hexval, str) or not hexval:
            raise ProbeError("protocol", f"{what}: checksum needs algorithm and value")
        if algo.lower() not in CHECKSUM_ALGORITHMS:
            raise ProbeError("protocol", f"{what}: unknown checksum algorithm {algo!r}")
        checksum = (algo.lower(), hexval.lower())
    return Backup(
        type=backup_type(doc.get("type", "full")),
        ok=status == "success",
        start=start,
        finish=finish,
        size=_number(doc, "size_bytes", what),
        file=file,
        checksum=checksum,
        running=status == "running",
    )


def _escapes(file: str) -> bool:
    path = PurePosixPath(file)
    return path.is_absolute() or ".." in path.parts


def parse_pgbackrest(raw: bytes, stanza: str) -> StanzaInfo:
    """The named stanza from ``pgbackrest info --output=json``."""
    doc = load_json(raw, "pgbackrest info")
    if not isinstance(doc, list):
        raise ProbeError("protocol", "pgbackrest info: expected a JSON list of stanzas")
    found = [s for s in doc if isinstance(s, dict) and s.get("name") == stanza]
    if not found:
        raise ProbeError("protocol", f"pgbackrest info: stanza {stanza!r} not in the output")
    st = found[0]
    status = _object(st.get("status"), "pgbackrest info: status")
    code = status.get("code")
    if isinstance(code, bool) or not isinstance(code, int):
        raise ProbeError("protocol", "pgbackrest info: status.code is not a number")
    lock = _dig(status, "lock", "backup", "held")
    backups = [_pgbackrest_backup(b) for b in st.get("backup") or []]
    wal_min = wal_max = archive_id = None
    archives = [a for a in st.get("archive") or [] if isinstance(a, dict)]
    valid = [a for a in archives if _is_wal(a.get("max")) and _is_wal(a.get("min"))]
    if valid:
        newest = max(valid, key=lambda a: str(a["max"]))
        wal_max, archive_id = str(newest["max"]), str(newest.get("id", ""))
        wal_min = min(str(a["min"]) for a in valid)
    return StanzaInfo(
        status_code=code,
        backup_running=lock if isinstance(lock, bool) else None,
        backups=backups,
        wal_min=wal_min,
        wal_max=wal_max,
        archive_id=archive_id or None,
    )


def _dict_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _is_wal(value: Any) -> bool:
    return isinstance(value, str) and bool(_WAL_RE.match(value))


def _pgbackrest_backup(value: Any) -> Backup:
    b = _object(value, "pgbackrest info: backup")
    ts = _object(b.get("timestamp"), "pgbackrest info: backup timestamp")
    info = _dict_or_empty(b.get("info"))
    repo = _dict_or_empty(info.get("repository"))
    return Backup(
        type=backup_type(b.get("type")),
        ok=b.get("error") is not True,
        start=timestamp(ts["start"], "pgbackrest info: start") if "start" in ts else None,
        finish=timestamp(ts["stop"], "pgbackrest info: stop") if "stop" in ts else None,
        size=_number(info, "size", "pgbackrest info"),
        repo_size=_number(repo, "delta", "pgbackrest info"),
    )


def wal_position(segment: str, segment_size: int) -> tuple[int, int]:
    """(timeline, byte position of the segment's start) from a WAL file name."""
    timeline, log, seg = int(segment[:8], 16), int(segment[8:16], 16), int(segment[16:], 16)
    return timeline, log * 0x1_0000_0000 + seg * segment_size


def parse_drill(raw: bytes, what: str) -> Drill:
    """A restore-drill record (format in docs/backups.md)."""
    doc = _object(load_json(raw, what), what)
    result = doc.get("result")
    if result not in ("success", "failure"):
        raise ProbeError("protocol", f"{what}: result must be success or failure")
    if doc.get("timestamp") is None:
        raise ProbeError("protocol", f"{what}: timestamp is missing")
    return Drill(
        timestamp=timestamp(doc["timestamp"], f"{what}: timestamp"),
        ok=result == "success",
        duration=_number(doc, "duration_seconds", what),
        rows_verified=_number(doc, "rows_verified", what),
        checksums_verified=_number(doc, "checksums_verified", what),
        checksums_failed=_number(doc, "checksums_failed", what),
    )
