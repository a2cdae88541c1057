"""The backup set's files (exporter/kinds/backups/files.py): records parsed once per
file identity, invalid ones counted or, when strict, failing the run; the drill
path's checks; the newest WAL segment's time."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from exporter.file_io import list_files
from exporter.kinds.backups.config import RestoreDrillSource
from exporter.kinds.backups.files import drill_entries, manifest_at, newest_wal_mtime, parse_files
from exporter.kinds.backups.probe import BackupState
from exporter.probe import ProbeError

from ...fixtures_backups import backup_target


def _manifest(directory: Path, name: str, finish: float) -> Path:
    path = directory / f"{name}.manifest.json"
    path.write_text(json.dumps({"file": f"{name}.dump", "status": "success", "finish": finish}))
    return path


async def test_records_are_parsed_once_per_file_identity(tmp_path: Path) -> None:
    state = BackupState(backup_target({"type": "directory", "path": str(tmp_path)}))
    parsed: list[str] = []

    def parse(data: bytes, path: Path) -> Any:
        parsed.append(path.name)
        return manifest_at(data, path)

    a = _manifest(tmp_path, "a", 100)
    _manifest(tmp_path, "b", 200)
    (tmp_path / "c.manifest.json").write_text("{broken")

    async def run() -> tuple[list[Any], int]:
        entries = list_files(tmp_path, "*.manifest.json", 10)
        return await parse_files(state, entries, 1 << 20, parse, strict=False)

    backups, invalid = await run()
    assert (sorted(b.finish for b in backups), invalid) == ([100.0, 200.0], 1)
    assert {b.file for b in backups} == {str(tmp_path / "a.dump"), str(tmp_path / "b.dump")}
    assert sorted(parsed) == ["a.manifest.json", "b.manifest.json", "c.manifest.json"]
    assert (await run())[1] == 1 and len(parsed) == 3  # nothing read again
    a.write_text(json.dumps({"file": "a.dump", "status": "success", "finish": 300}))
    os.utime(a, (time.time() + 5, time.time() + 5))
    (tmp_path / "b.manifest.json").unlink()
    backups, invalid = await run()
    assert ([b.finish for b in backups], invalid) == ([300.0], 1)
    assert len(parsed) == 4 and parsed[-1] == "a.manifest.json"  # only the changed one
    assert set(state.parsed) == {a, tmp_path / "c.manifest.json"}


async def test_strict_parsing_fails_on_a_bad_record(tmp_path: Path) -> None:
    state = BackupState(backup_target({"type": "restore_drill", "path": str(tmp_path)}))
    (tmp_path / "bad.json").write_text("{broken")
    entries = list_files(tmp_path, "*.json", 10)
    with pytest.raises(ProbeError) as err:
        await parse_files(state, entries, 1 << 20, manifest_at, strict=True)
    assert err.value.reason == "protocol"


def test_a_drill_path_is_a_record_or_a_directory_of_them(tmp_path: Path) -> None:
    record = tmp_path / "latest.json"
    record.write_text("{}")
    one = drill_entries(RestoreDrillSource(type="restore_drill", path=record))
    assert [p for p, _ in one] == [record]
    listed = drill_entries(RestoreDrillSource(type="restore_drill", path=tmp_path))
    assert [p for p, _ in listed] == [record]
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ProbeError) as err:
        drill_entries(RestoreDrillSource(type="restore_drill", path=tmp_path / "fifo"))
    assert (err.value.reason, str(err.value)) == (
        "config",
        f"{tmp_path / 'fifo'} is a FIFO, not a record file or a directory of them",
    )
    with pytest.raises(FileNotFoundError):
        drill_entries(RestoreDrillSource(type="restore_drill", path=tmp_path / "gone"))


def test_the_newest_wal_segment_time(tmp_path: Path) -> None:
    segment = "000000010000000000000003"
    assert newest_wal_mtime(tmp_path, segment) is None
    for i, suffix in enumerate(("aaaa.gz", "bbbb.gz")):
        path = tmp_path / f"{segment}-{suffix}"
        path.write_bytes(b"wal")
        os.utime(path, (1000 + i, 1000 + i))
    (tmp_path / "000000010000000000000004-cccc.gz").write_bytes(b"a later segment")
    assert newest_wal_mtime(tmp_path, segment) == 1001
