"""What each source reports (exporter/kinds/backups/collect.py), one probe run at a
time: manifests (invalid, failed, running, in subdirectories), bare files, the RPO
of snapshot dumps, pgBackRest stanzas, restore-drill records."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from exporter.kinds.backups.probe import BackupState
from stack import Postgres
from stack.backups import PgBackRest, dump_backup, write_manifest

from ...fixtures_backups import archived_pg, backup_dir, backup_target, probe_once, samples

__all__ = ["archived_pg", "backup_dir"]

Archived = tuple[Postgres, PgBackRest]


async def test_malformed_manifest_is_counted_and_skipped(
    archived_pg: Archived, backup_dir: Path
) -> None:
    pg, _ = archived_pg
    dump_backup(pg, backup_dir)
    (backup_dir / "broken.manifest.json").write_text('{"file": "x.dump", "status": ')
    old = dump_backup(pg, backup_dir, name="old", kind="diff", manifest=False)
    write_manifest(old, time.time() - 10 * 86400, time.time() - 10 * 86400 + 5, kind="diff")
    failed = dump_backup(pg, backup_dir, name="failed", manifest=False)
    write_manifest(failed, time.time() - 60, time.time() - 50, status="failed")
    running = {"file": "next.dump", "status": "running", "start": time.time(), "type": "incr"}
    (backup_dir / "next.dump.manifest.json").write_text(json.dumps(running))
    target = backup_target({"type": "directory", "path": str(backup_dir)}, retention="168h")
    state = BackupState(target)
    try:
        s = samples(await probe_once(target, state))
    finally:
        await state.aclose()
    assert s[("tradeops_backup_invalid_manifests", ("set",))] == 1
    assert s[("tradeops_backup_retention_window_backups", ("set", "full"))] == 1
    assert s[("tradeops_backup_retention_window_backups", ("set", "diff"))] == 0
    assert s[("tradeops_backup_last_duration_seconds", ("set", "diff"))] == pytest.approx(5)
    assert s[("tradeops_backup_in_progress", ("set",))] == 1
    assert s[("tradeops_backup_last_attempt_success", ("set",))] == 1  # running ones skipped
    assert s[("tradeops_backup_retention_window_backups", ("set", "incr"))] == 0


async def test_manifests_in_subdirectories_name_files_beside_them(backup_dir: Path) -> None:
    day = backup_dir / "2026-11-23"
    day.mkdir()
    dump = day / "orders.dump"
    dump.write_bytes(b"not really a dump, but hashed all the same")
    write_manifest(dump, time.time() - 5, time.time())
    (backup_dir / "orders.dump").write_bytes(b"a decoy at the top level")
    source = {"type": "directory", "path": str(backup_dir), "manifests": "*/*.manifest.json"}
    target = backup_target(source)
    state = BackupState(target)
    try:
        s = samples(await probe_once(target, state))
    finally:
        await state.aclose()
    assert s[("tradeops_backup_checksum_ok", ("set",))] == 1
    assert s[("tradeops_backup_retention_window_backups", ("set", "full"))] == 1


async def test_bare_files_use_mtime_and_size(backup_dir: Path) -> None:
    good = backup_dir / "a.sql.gz"
    good.write_bytes(b"x" * 1000)
    os.utime(good, (time.time() - 3600, time.time() - 3600))
    empty = backup_dir / "b.sql.gz"
    empty.write_bytes(b"")
    target = backup_target({"type": "directory", "path": str(backup_dir), "files": "*.sql.gz"})
    state = BackupState(target)
    try:
        s = samples(await probe_once(target, state))
    finally:
        await state.aclose()
    assert s[("tradeops_backup_last_success_timestamp_seconds", ("set", "full"))] == (
        pytest.approx(good.stat().st_mtime)
    )
    assert s[("tradeops_backup_last_size_bytes", ("set", "full"))] == 1000
    assert s[("tradeops_backup_last_attempt_success", ("set",))] == 0  # the empty file
    assert s[("tradeops_backup_rpo_seconds", ("set",))] == pytest.approx(3600, abs=30)


async def test_snapshot_dumps_count_their_rpo_from_the_start(backup_dir: Path) -> None:
    dump = backup_dir / "big.dump"
    dump.write_bytes(b"dump")
    now = time.time()
    write_manifest(dump, now - 7200, now - 600)
    for point, expected in (("finish", now - 600), ("start", now - 7200)):
        source = {"type": "directory", "path": str(backup_dir), "recovery_point": point}
        target = backup_target(source)
        state = BackupState(target)
        try:
            s = samples(await probe_once(target, state))
        finally:
            await state.aclose()
        got = s[("tradeops_backup_recovery_point_timestamp_seconds", ("set",))]
        assert got == pytest.approx(expected, abs=0.01), point
        assert s[("tradeops_backup_rpo_seconds", ("set",))] == pytest.approx(now - expected, abs=5)


async def test_pgbackrest_new_backup_moves_the_timestamp(archived_pg: Archived) -> None:
    _, rest = archived_pg
    target = backup_target({"type": "pgbackrest", "stanza": rest.stanza, "command": rest.command})
    state = BackupState(target)
    try:
        before = samples(await probe_once(target, state))
        await asyncio.to_thread(rest.backup, "incr")
        after = samples(await probe_once(target, state))
    finally:
        await state.aclose()
    key = ("tradeops_backup_last_success_timestamp_seconds", ("set", "incr"))
    assert key not in before or after[key] > before[key]
    assert after[key] > time.time() - 120
    incrs = [b for b in rest.info()[0]["backup"] if b["type"] == "incr"]
    repo = max(incrs, key=lambda b: b["timestamp"]["stop"])["info"]["repository"]
    # what the incremental added, not the size of the whole set it restores from
    assert repo["delta"] < repo["size"]
    assert after[("tradeops_backup_last_repository_size_bytes", ("set", "incr"))] == repo["delta"]


async def test_pgbackrest_missing_stanza_is_reported_not_failed(archived_pg: Archived) -> None:
    _, rest = archived_pg
    target = backup_target({"type": "pgbackrest", "stanza": "ghost", "command": rest.command})
    state = BackupState(target)
    try:
        s = samples(await probe_once(target, state))
    finally:
        await state.aclose()
    assert s[("tradeops_backup_pgbackrest_stanza_status_code", ("set",))] == 1
    assert s[("tradeops_backup_pgbackrest_stanza_ok", ("set",))] == 0
    assert s[("tradeops_backup_retention_window_backups", ("set", "full"))] == 0
    assert ("tradeops_backup_rpo_seconds", ("set",)) not in s


async def test_real_restore_drill_writes_a_record(archived_pg: Archived, tmp_path: Path) -> None:
    from stack.backups import restore_drill

    pg, _ = archived_pg
    dump = dump_backup(pg, tmp_path / "dumps")
    record = tmp_path / "drills" / "latest.json"
    assert await asyncio.to_thread(restore_drill, pg, dump, record, "ticks")
    target = backup_target({"type": "restore_drill", "path": str(record.parent)})
    state = BackupState(target)
    try:
        s = samples(await probe_once(target, state))
    finally:
        await state.aclose()
    assert s[("tradeops_backup_restore_drill_last_success", ("set",))] == 1
    assert s[("tradeops_backup_restore_drill_last_rows_verified", ("set",))] == 20000
    written = json.loads(record.read_text())
    duration = s[("tradeops_backup_restore_drill_last_duration_seconds", ("set",))]
    assert duration == written["duration_seconds"] and 0 < duration < 120
    assert s[("tradeops_backup_restore_drill_last_checksums_verified", ("set",))] == 1
    when = datetime.fromisoformat(written["timestamp"].replace("Z", "+00:00")).timestamp()
    assert s[("tradeops_backup_restore_drill_last_timestamp_seconds", ("set",))] == when
    assert time.time() - 120 < when <= time.time()


async def test_an_empty_drill_directory_says_so(tmp_path: Path) -> None:
    target = backup_target({"type": "restore_drill", "path": str(tmp_path)})
    state = BackupState(target)
    try:
        s = samples(await probe_once(target, state))
    finally:
        await state.aclose()
    assert s == {
        ("tradeops_backup_restore_drill_records", ("set",)): 0,
        ("tradeops_backup_rpo_objective_seconds", ("set",)): 93600,
        ("tradeops_backup_restore_drill_max_interval_seconds", ("set",)): 691200,
        ("tradeops_backup_retention_min_backups", ("set",)): 1,
    }
