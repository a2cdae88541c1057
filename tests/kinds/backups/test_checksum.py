"""Checksum verification (exporter/kinds/backups/checksum.py): resumed across runs
under its byte budget, failed for a changed, missing or resized file; the first two
through the probe on a real pg_dump, the rest on the classes themselves."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from exporter.kinds.backups.checksum import Checksums, PendingHash
from exporter.kinds.backups.probe import BackupState
from exporter.kinds.backups.sources import Backup
from stack import Postgres
from stack.backups import PgBackRest, dump_backup

from ...fixtures_backups import archived_pg, backup_dir, backup_target, probe_once, samples

__all__ = ["archived_pg", "backup_dir"]

Archived = tuple[Postgres, PgBackRest]


async def test_corrupted_dump_fails_its_checksum(archived_pg: Archived, backup_dir: Path) -> None:
    pg, _ = archived_pg
    dump = dump_backup(pg, backup_dir)
    target = backup_target({"type": "directory", "path": str(backup_dir)})
    state = BackupState(target)
    try:
        first = samples(await probe_once(target, state))
        assert first[("tradeops_backup_checksum_ok", ("set",))] == 1
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
        dump.write_bytes(bytes(data))
        second = samples(await probe_once(target, state))
        assert second[("tradeops_backup_checksum_ok", ("set",))] == 0
        dump.unlink()
        third = samples(await probe_once(target, state))
        assert third[("tradeops_backup_checksum_ok", ("set",))] == 0
    finally:
        await state.aclose()


async def test_checksum_of_a_large_file_resumes_across_runs(
    archived_pg: Archived, backup_dir: Path
) -> None:
    pg, _ = archived_pg
    dump = dump_backup(pg, backup_dir)
    budget = 4096
    runs_needed = -(-dump.stat().st_size // budget)
    assert runs_needed >= 3, "the dump should span several runs' budget"
    target = backup_target(
        {"type": "directory", "path": str(backup_dir)}, checksum={"bytes_per_run": budget}
    )
    state = BackupState(target)
    try:
        progress = []
        for _ in range(runs_needed - 1):
            s = samples(await probe_once(target, state))
            assert ("tradeops_backup_checksum_ok", ("set",)) not in s
            assert ("tradeops_backup_checksum_verified_timestamp_seconds", ("set",)) not in s
            progress.append(s[("tradeops_backup_checksum_progress_ratio", ("set",))])
        assert progress == sorted(progress) and 0 < progress[0] < progress[-1] < 1
        last_run = time.time()
        s = samples(await probe_once(target, state))
        finished = time.time()
        assert s[("tradeops_backup_checksum_ok", ("set",))] == 1
        # when the hash completed, not when it began runs earlier
        verified = s[("tradeops_backup_checksum_verified_timestamp_seconds", ("set",))]
        assert last_run <= verified <= finished
        assert s[("tradeops_backup_checksum_progress_ratio", ("set",))] == 1
    finally:
        await state.aclose()


def _file(tmp_path: Path, size: int) -> tuple[Path, str]:
    path = tmp_path / "backup.dump"
    path.write_bytes(os.urandom(size))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_pending_hash_advances_by_its_budget_and_matches_at_the_end(tmp_path: Path) -> None:
    path, digest = _file(tmp_path, 10_000)
    st = os.stat(path)
    pending = PendingHash(path, ("id",), "sha256", digest.upper(), st.st_size)
    offsets = []
    while not pending.done:
        pending.advance(4096)
        offsets.append(pending.offset)
    assert offsets == [4096, 8192, 10_000]
    assert pending.matches()  # hex digits compared without regard to case
    wrong = PendingHash(path, ("id",), "sha256", "00" * 32, st.st_size)
    wrong.advance(1 << 20)
    assert wrong.done and not wrong.matches()


def test_a_file_that_shrank_stops_the_hash_short(tmp_path: Path) -> None:
    path, digest = _file(tmp_path, 10_000)
    pending = PendingHash(path, ("id",), "sha256", digest, 10_000)
    pending.advance(4096)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(FileNotFoundError, match="shorter than expected"):
        pending.advance(1 << 20)


def _backup(path: Path, digest: str, size: float | None) -> Backup:
    now = time.time()
    return Backup("full", True, now - 5, now, size, file=str(path), checksum=("sha256", digest))


def test_a_missing_or_resized_file_fails_before_a_byte_is_read(tmp_path: Path) -> None:
    path, digest = _file(tmp_path, 1000)
    checks = Checksums()
    assert checks.resume(_backup(path, digest, 1000), path, None, 100.0) is None
    assert checks.verified is not None and not checks.verified.ok
    assert checks.verified.identity == ("missing",) and checks.verified.at == 100.0
    resized = _backup(path, digest, 999)  # the manifest's size_bytes disagrees
    assert checks.resume(resized, path, os.stat(path), 101.0) is None
    assert not checks.verified.ok and checks.pending is None


def test_a_verification_resumes_completes_and_is_reused_until_reverify_after(
    tmp_path: Path,
) -> None:
    path, digest = _file(tmp_path, 1000)
    backup, st = _backup(path, digest, 1000), os.stat(path)
    checks = Checksums()
    pending = checks.resume(backup, path, st, 100.0)
    assert pending is not None and checks.resume(backup, path, st, 101.0) is pending
    pending.advance(1 << 20)
    done = checks.complete(pending, ("sha256", digest), 102.0)
    assert done.ok and checks.pending is None and checks.verified is done
    ident = pending.identity
    assert checks.still_valid(ident, ("sha256", digest), 150.0, reverify_after=60) is done
    assert checks.still_valid(ident, ("sha256", digest), 162.0, reverify_after=60) is None
    assert checks.still_valid(ident, ("sha256", "ff" * 32), 150.0, reverify_after=60) is None
    assert checks.still_valid(("other",), ("sha256", digest), 150.0, reverify_after=60) is None
