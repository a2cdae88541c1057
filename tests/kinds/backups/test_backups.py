"""Backup probe against real pg_dump output, a real pgBackRest stanza and drill records."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from exporter.config import ConfigError, parse
from exporter.kinds.backups.probe import KIND, BackupState, BackupTarget
from exporter.probe import ProbeContext, ProbeResult
from exporter.scheduler import run_probe
from stack import Postgres
from stack.backups import PgBackRest, dump_backup, write_drill_record, write_manifest

from ...fixtures_backups import archived_pg, backup_dir
from ...helpers import Running, Series, eventually, scrape_until, value

__all__ = ["archived_pg", "backup_dir"]

Factory = Callable[..., Any]
Archived = tuple[Postgres, PgBackRest]


def _yaml(source: str, extra: str = "", interval: str = "1s", timeout: str = "800ms") -> str:
    return f"""
backups:
  - name: set
    interval: {interval}
    timeout: {timeout}
    source: {source}
{extra}
"""


async def _settled(run: Running, runs: int = 1) -> Series:
    """The scrape that shows the target's ``runs``-th run finished (not a later one)."""

    def done(m: Series) -> bool:
        return (value(m, "tradeops_probe_runs_total", kind="backups", target="set") or 0) >= runs

    return await scrape_until(run, done, timeout=20)


def _errors(m: Series, reason: str) -> float:
    return value(m, "tradeops_probe_errors_total", kind="backups", target="set", reason=reason) or 0


async def _probe_once(target: BackupTarget, state: BackupState) -> ProbeResult:
    ctx = ProbeContext(state, asyncio.get_running_loop().time() + 30, time.time)
    return await KIND.probe(target, ctx)


def _samples(r: ProbeResult) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.family.name, s.labels): s.value for s in r.samples}  # type: ignore[union-attr]


def _target(source: dict[str, Any], **extra: Any) -> BackupTarget:
    return BackupTarget.model_validate(
        {"name": "set", "interval": 10, "timeout": 5, "source": source, **extra}
    )


async def test_fresh_dump_reports_recent_backup_and_verified_checksum(
    archived_pg: Archived, backup_dir: Path, exporter_factory: Factory
) -> None:
    pg, _ = archived_pg
    before = time.time()
    dump = dump_backup(pg, backup_dir)
    started = time.time()
    run: Running = await exporter_factory(_yaml(f"{{type: directory, path: {backup_dir}}}"))
    m = await _settled(run)
    scraped = time.time()
    t = {"target": "set"}
    assert value(m, "tradeops_up", kind="backups", **t) == 1
    finish = value(m, "tradeops_backup_last_success_timestamp_seconds", **t, type="full")
    assert finish is not None and before - 1 <= finish <= time.time() + 1
    size = dump.stat().st_size
    assert value(m, "tradeops_backup_last_size_bytes", **t, type="full") == size
    assert value(m, "tradeops_backup_retention_window_backups", **t, type="full") == 1
    assert value(m, "tradeops_backup_checksum_ok", **t) == 1
    verified = value(m, "tradeops_backup_checksum_verified_timestamp_seconds", **t)
    assert verified is not None and started <= verified <= scraped
    assert value(m, "tradeops_backup_invalid_manifests", **t) == 0
    assert value(m, "tradeops_backup_last_attempt_success", **t) == 1
    rpo = value(m, "tradeops_backup_rpo_seconds", **t)
    assert rpo is not None and 0 <= rpo < 60
    assert value(m, "tradeops_backup_recovery_point_timestamp_seconds", **t) == finish


async def test_corrupted_dump_fails_its_checksum(archived_pg: Archived, backup_dir: Path) -> None:
    pg, _ = archived_pg
    dump = dump_backup(pg, backup_dir)
    target = _target({"type": "directory", "path": str(backup_dir)})
    state = BackupState(target)
    try:
        first = _samples(await _probe_once(target, state))
        assert first[("tradeops_backup_checksum_ok", ("set",))] == 1
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
        dump.write_bytes(bytes(data))
        second = _samples(await _probe_once(target, state))
        assert second[("tradeops_backup_checksum_ok", ("set",))] == 0
        dump.unlink()
        third = _samples(await _probe_once(target, state))
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
    target = _target(
        {"type": "directory", "path": str(backup_dir)}, checksum={"bytes_per_run": budget}
    )
    state = BackupState(target)
    try:
        progress = []
        for _ in range(runs_needed - 1):
            s = _samples(await _probe_once(target, state))
            assert ("tradeops_backup_checksum_ok", ("set",)) not in s
            assert ("tradeops_backup_checksum_verified_timestamp_seconds", ("set",)) not in s
            progress.append(s[("tradeops_backup_checksum_progress_ratio", ("set",))])
        assert progress == sorted(progress) and 0 < progress[0] < progress[-1] < 1
        last_run = time.time()
        s = _samples(await _probe_once(target, state))
        finished = time.time()
        assert s[("tradeops_backup_checksum_ok", ("set",))] == 1
        # when the hash completed, not when it began runs earlier
        verified = s[("tradeops_backup_checksum_verified_timestamp_seconds", ("set",))]
        assert last_run <= verified <= finished
        assert s[("tradeops_backup_checksum_progress_ratio", ("set",))] == 1
    finally:
        await state.aclose()


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
    target = _target({"type": "directory", "path": str(backup_dir)}, retention="168h")
    state = BackupState(target)
    try:
        s = _samples(await _probe_once(target, state))
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
    target = _target(source)
    state = BackupState(target)
    try:
        s = _samples(await _probe_once(target, state))
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
    target = _target({"type": "directory", "path": str(backup_dir), "files": "*.sql.gz"})
    state = BackupState(target)
    try:
        s = _samples(await _probe_once(target, state))
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
        target = _target(source)
        state = BackupState(target)
        try:
            s = _samples(await _probe_once(target, state))
        finally:
            await state.aclose()
        got = s[("tradeops_backup_recovery_point_timestamp_seconds", ("set",))]
        assert got == pytest.approx(expected, abs=0.01), point
        assert s[("tradeops_backup_rpo_seconds", ("set",))] == pytest.approx(now - expected, abs=5)


async def test_pgbackrest_stanza_backups_and_wal_archive(
    archived_pg: Archived, exporter_factory: Factory
) -> None:
    pg, rest = archived_pg
    cmd = json.dumps(rest.command)
    run: Running = await exporter_factory(
        _yaml(
            f"{{type: pgbackrest, stanza: {rest.stanza}, command: {cmd}, repo_path: {rest.repo}}}",
            interval="3s",
            timeout="2500ms",
        )
    )
    m = await _settled(run)
    t = {"target": "set"}
    assert value(m, "tradeops_up", kind="backups", **t) == 1
    assert value(m, "tradeops_backup_pgbackrest_stanza_ok", **t) == 1
    assert value(m, "tradeops_backup_pgbackrest_stanza_status_code", **t) == 0
    assert value(m, "tradeops_backup_in_progress", **t) == 0
    info = rest.info()[0]
    newest_full = max(b["timestamp"]["stop"] for b in info["backup"] if b["type"] == "full")
    assert value(m, "tradeops_backup_last_success_timestamp_seconds", **t, type="full") == (
        newest_full
    )
    assert newest_full > time.time() - 600
    full = max(
        (b for b in info["backup"] if b["type"] == "full"), key=lambda b: b["timestamp"]["stop"]
    )
    repo_size = value(m, "tradeops_backup_last_repository_size_bytes", **t, type="full")
    assert repo_size == full["info"]["repository"]["delta"] > 0
    # the newest archived segment's timeline: pgBackRest's name for it and the server's own
    newest_wal = max(a["max"] for a in info["archive"])
    timeline = value(m, "tradeops_backup_pgbackrest_wal_archive_timeline", **t)
    assert timeline == int(newest_wal[:8], 16)
    assert timeline == int(pg.psql("SELECT timeline_id FROM pg_control_checkpoint()"))
    lo = value(m, "tradeops_backup_pgbackrest_wal_archive_min_bytes", **t)
    hi = value(m, "tradeops_backup_pgbackrest_wal_archive_max_bytes", **t)
    assert lo is not None and hi is not None and hi > lo
    archived = value(m, "tradeops_backup_pgbackrest_wal_last_archived_timestamp_seconds", **t)
    assert archived is not None and archived >= newest_full - 5
    point = value(m, "tradeops_backup_recovery_point_timestamp_seconds", **t)
    assert point == max(archived, newest_full)


async def test_pgbackrest_new_backup_moves_the_timestamp(archived_pg: Archived) -> None:
    _, rest = archived_pg
    target = _target({"type": "pgbackrest", "stanza": rest.stanza, "command": rest.command})
    state = BackupState(target)
    try:
        before = _samples(await _probe_once(target, state))
        await asyncio.to_thread(rest.backup, "incr")
        after = _samples(await _probe_once(target, state))
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
    target = _target({"type": "pgbackrest", "stanza": "ghost", "command": rest.command})
    state = BackupState(target)
    try:
        s = _samples(await _probe_once(target, state))
    finally:
        await state.aclose()
    assert s[("tradeops_backup_pgbackrest_stanza_status_code", ("set",))] == 1
    assert s[("tradeops_backup_pgbackrest_stanza_ok", ("set",))] == 0
    assert s[("tradeops_backup_retention_window_backups", ("set", "full"))] == 0
    assert ("tradeops_backup_rpo_seconds", ("set",)) not in s


async def test_hanging_pgbackrest_is_killed_at_its_timeout(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    """A wrapper that sleeps stands in for a hung pgbackrest (e.g. a stuck repository).

    It ignores SIGTERM and leaves a child behind, so only a group-wide SIGKILL stops it.
    """
    pidfile = tmp_path / "pids"
    wrapper = tmp_path / "pgbackrest-hang"
    wrapper.write_text(f"#!/bin/sh\ntrap '' TERM\nsleep 300 &\necho $$ $! >> {pidfile}\nwait\n")
    wrapper.chmod(0o755)
    run: Running = await exporter_factory(
        _yaml(f'{{type: pgbackrest, stanza: main, command: ["{wrapper}"], command_timeout: 300ms}}')
    )

    async def timed_out() -> bool:
        return _errors(await run.scrape(), "timeout") >= 2

    await eventually(timed_out, timeout=20)
    m = await run.scrape()
    assert value(m, "tradeops_up", kind="backups", target="set") == 0
    await asyncio.sleep(0.5)  # the newest run may still be starting its wrapper
    runs = [[int(p) for p in line.split()] for line in pidfile.read_text().splitlines()]
    assert len(runs) >= 2
    for wrapper_pid, child_pid in runs[:-1]:
        with pytest.raises(ProcessLookupError):
            os.kill(wrapper_pid, 0)  # killed and reaped: not even a zombie remains
        assert _dead(child_pid)  # the orphan was killed too (init reaps it)


def _dead(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


async def test_malformed_pgbackrest_output_is_a_protocol_error(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    saved = tmp_path / "info.json"
    saved.write_text('[{"name": "main", "status": {"code": 0')
    run: Running = await exporter_factory(
        _yaml(f"{{type: pgbackrest, stanza: main, output_file: {saved}}}")
    )
    m = await _settled(run)
    assert value(m, "tradeops_up", kind="backups", target="set") == 0
    assert _errors(m, "protocol") >= 1
    saved.write_text(json.dumps([{"name": "main", "status": {"code": 2, "message": "no backup"}}]))
    m = await _settled(run, runs=4)
    modified = value(
        m, "tradeops_backup_pgbackrest_output_modified_timestamp_seconds", target="set"
    )
    assert modified == pytest.approx(saved.stat().st_mtime)
    assert value(m, "tradeops_up", kind="backups", target="set") == 1
    assert value(m, "tradeops_backup_pgbackrest_stanza_ok", target="set") == 0
    assert value(m, "tradeops_backup_pgbackrest_stanza_status_code", target="set") == 2


async def test_a_fifo_in_place_of_the_output_fails_at_once_without_a_thread(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    """A FIFO with no writer would block open() for good: it is refused unopened."""
    saved = tmp_path / "info.json"
    os.mkfifo(saved)
    before = _io_threads()
    run: Running = await exporter_factory(
        _yaml(f"{{type: pgbackrest, stanza: main, output_file: {saved}}}", timeout="300ms")
    )

    async def refused() -> bool:
        return _errors(await run.scrape(), "config") >= 3

    await eventually(refused, timeout=20)
    m = await run.scrape()
    assert _errors(m, "timeout") == 0
    assert value(m, "tradeops_up", kind="backups", target="set") == 0
    assert _io_threads() == before  # nothing stuck in open()
    regular = tmp_path / "regular.json"
    regular.write_text(json.dumps([{"name": "main", "status": {"code": 0, "message": "ok"}}]))
    regular.replace(saved)

    async def recovered() -> bool:
        return value(await run.scrape(), "tradeops_up", kind="backups", target="set") == 1

    await eventually(recovered, timeout=20)


async def test_a_hung_file_operation_fails_later_runs_at_once(tmp_path: Path) -> None:
    """A read stuck in the kernel (a hung network mount) cannot be cancelled. No real
    file here hangs once FIFOs are refused, so a call blocked on an event stands in
    for it: later runs fail as ``timeout`` at once, with no second thread."""
    saved = tmp_path / "info.json"
    saved.write_text(json.dumps([{"name": "main", "status": {"code": 0, "message": "ok"}}]))
    target = _target({"type": "pgbackrest", "stanza": "main", "output_file": str(saved)})
    state = BackupState(target)
    release = threading.Event()
    before = _io_threads()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(state.io.call(release.wait, 30), 0.2)  # the deadline
    try:
        outs = [await run_probe(KIND, target, state, 0.3) for _ in range(3)]
        assert {o.reason for o in outs} == {"timeout"}, [o.error for o in outs]
        assert max(o.duration for o in outs) < 0.1
        assert "still blocked" in str(outs[0].error)
        assert _io_threads() == before + 1  # one stuck call, not one per run
    finally:
        release.set()

    async def threads_back() -> bool:
        return _io_threads() == before

    await eventually(threads_back, timeout=5)
    assert (await run_probe(KIND, target, state, 0.3)).ok


def _io_threads() -> int:
    return sum(t.name == "backup-io" for t in threading.enumerate())


async def test_missing_directory_is_an_error_not_an_empty_set(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(
        _yaml(f"{{type: directory, path: {tmp_path / 'not-mounted'}}}")
    )
    m = await _settled(run)
    assert value(m, "tradeops_up", kind="backups", target="set") == 0
    assert _errors(m, "other") >= 1
    assert value(m, "tradeops_backup_retention_window_backups", target="set", type="full") is None


async def test_restore_drill_records(
    archived_pg: Archived, tmp_path: Path, exporter_factory: Factory
) -> None:
    record = tmp_path / "drill.json"
    ok_at = time.time() - 120
    write_drill_record(record, True, timestamp=ok_at, duration=4.5, rows=20000, checksums=3)
    run: Running = await exporter_factory(_yaml(f"{{type: restore_drill, path: {record}}}"))
    m = await _settled(run)
    t = {"target": "set"}
    assert value(m, "tradeops_backup_restore_drill_last_success", **t) == 1
    assert value(m, "tradeops_backup_restore_drill_last_timestamp_seconds", **t) == (
        pytest.approx(ok_at, abs=0.01)
    )
    assert value(m, "tradeops_backup_restore_drill_last_duration_seconds", **t) == 4.5
    assert value(m, "tradeops_backup_restore_drill_last_checksums_verified", **t) == 3
    assert value(m, "tradeops_backup_restore_drill_last_success_timestamp_seconds", **t) == (
        pytest.approx(ok_at, abs=0.01)
    )
    assert value(m, "tradeops_backup_restore_drill_last_rows_verified", **t) == 20000
    failed_at = time.time() - 30
    write_drill_record(
        record, False, timestamp=failed_at, duration=1.0, checksums=0, checksums_failed=2
    )

    m = await scrape_until(
        run, lambda m: value(m, "tradeops_backup_restore_drill_last_success", **t) == 0
    )
    assert value(m, "tradeops_backup_restore_drill_last_success_timestamp_seconds", **t) == (
        pytest.approx(ok_at, abs=0.01)
    )
    assert value(m, "tradeops_backup_restore_drill_last_checksums_failed", **t) == 2
    assert value(m, "tradeops_backup_restore_drill_last_timestamp_seconds", **t) == (
        pytest.approx(failed_at, abs=0.01)
    )
    assert value(m, "tradeops_backup_restore_drill_last_duration_seconds", **t) == 1.0
    assert value(m, "tradeops_backup_restore_drill_last_checksums_verified", **t) == 0
    record.write_text("{not json")

    async def protocol() -> bool:
        return _errors(await run.scrape(), "protocol") >= 1

    await eventually(protocol, timeout=10)
    m = await run.scrape()
    assert value(m, "tradeops_up", kind="backups", target="set") == 0
    assert value(m, "tradeops_backup_restore_drill_last_success", **t) is None


async def test_real_restore_drill_writes_a_record(archived_pg: Archived, tmp_path: Path) -> None:
    from stack.backups import restore_drill

    pg, _ = archived_pg
    dump = dump_backup(pg, tmp_path / "dumps")
    record = tmp_path / "drills" / "latest.json"
    assert await asyncio.to_thread(restore_drill, pg, dump, record, "ticks")
    target = _target({"type": "restore_drill", "path": str(record.parent)})
    state = BackupState(target)
    try:
        s = _samples(await _probe_once(target, state))
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
    target = _target({"type": "restore_drill", "path": str(tmp_path)})
    state = BackupState(target)
    try:
        s = _samples(await _probe_once(target, state))
    finally:
        await state.aclose()
    assert s == {
        ("tradeops_backup_restore_drill_records", ("set",)): 0,
        ("tradeops_backup_rpo_objective_seconds", ("set",)): 93600,
        ("tradeops_backup_restore_drill_max_interval_seconds", ("set",)): 691200,
        ("tradeops_backup_retention_min_backups", ("set",)): 1,
    }


async def test_objectives_are_exported_with_the_data(
    archived_pg: Archived, backup_dir: Path, tmp_path: Path, exporter_factory: Factory
) -> None:
    pg, rest = archived_pg
    dump_backup(pg, backup_dir)
    record = tmp_path / "drill.json"
    write_drill_record(record, True, timestamp=time.time() - 60, duration=1.0, rows=1)
    cmd = json.dumps(rest.command)
    run: Running = await exporter_factory(f"""
backups:
  - name: dumps
    interval: 3s
    timeout: 2500ms
    source: {{type: directory, path: {backup_dir}}}
  - name: stanza
    interval: 3s
    timeout: 2500ms
    source: {{type: pgbackrest, stanza: {rest.stanza}, command: {cmd}}}
    rpo_objective: 90m
    restore_drill_max_interval: 48h
    min_backups: 3
  - name: drills
    interval: 3s
    timeout: 2500ms
    source: {{type: restore_drill, path: {record}}}
    min_backups: 0
  - name: unmounted
    interval: 3s
    timeout: 2500ms
    source: {{type: directory, path: {tmp_path / "not-mounted"}}}
""")

    def settled(m: Series) -> bool:
        runs = "tradeops_probe_runs_total"
        names = ("dumps", "stanza", "drills", "unmounted")
        return all((value(m, runs, kind="backups", target=n) or 0) >= 1 for n in names)

    m = await scrape_until(run, settled, timeout=20)
    rpo = "tradeops_backup_rpo_objective_seconds"
    drill = "tradeops_backup_restore_drill_max_interval_seconds"
    count = "tradeops_backup_retention_min_backups"
    # the defaults: 26 h, 8 days, one backup
    assert (value(m, rpo, target="dumps"), value(m, drill, target="dumps")) == (93600, 691200)
    assert value(m, count, target="dumps") == 1
    assert value(m, "tradeops_backup_retention_window_backups", target="dumps", type="full") == 1
    # configured
    assert (value(m, rpo, target="stanza"), value(m, drill, target="stanza")) == (5400, 172800)
    assert value(m, count, target="stanza") == 3
    assert value(m, "tradeops_backup_pgbackrest_stanza_ok", target="stanza") == 1
    assert (value(m, rpo, target="drills"), value(m, count, target="drills")) == (93600, 0)
    # a failed run withdraws them with the data
    assert value(m, "tradeops_up", kind="backups", target="unmounted") == 0
    assert value(m, rpo, target="unmounted") is None
    assert value(m, count, target="unmounted") is None


def test_min_backups_is_not_negative() -> None:
    with pytest.raises(ConfigError) as err:
        parse(_yaml("{type: directory, path: /x}", "    min_backups: -1"), "cfg.yml")
    assert err.value.lines() == [
        "cfg.yml: backups[0].min_backups: Input should be greater than or equal to 0"
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{type: pgbackrest, stanza: main, command: [pgbackrest], output_file: /x}",
            "cfg.yml: backups[0].source.pgbackrest: give command or output_file, not both",
        ),
        (
            "{type: directory, path: /x, manifests: '*.json', files: '*.dump'}",
            "cfg.yml: backups[0].source.directory: give manifests or files, not both",
        ),
        (
            "{type: pgbackrest, stanza: main, wal_segment_size: 1000}",
            "cfg.yml: backups[0].source.pgbackrest.wal_segment_size: "
            "must be a power of two between 1 MiB and 1 GiB",
        ),
        (
            "{type: s3, bucket: b}",
            "cfg.yml: backups[0].source: "
            "expected a mapping with type: directory, pgbackrest or restore_drill",
        ),
        (
            "{type: directory}",
            "cfg.yml: backups[0].source.directory.path: required field is missing",
        ),
        (
            "{type: pgbackrest, stanza: --main}",
            "cfg.yml: backups[0].source.pgbackrest.stanza: "
            "String should match pattern '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$'",
        ),
    ],
)
def test_config_errors(source: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(_yaml(source), "cfg.yml")
    assert err.value.lines() == [message]


async def test_cancelled_command_is_reaped_and_the_cancel_propagates(tmp_path: Path) -> None:
    """Cancelling a run (the scheduler's deadline, or shutdown) mid-command must stop
    the process group and still cancel the caller."""
    from exporter.file_io import run_command

    pidfile = tmp_path / "pid"
    script = tmp_path / "hang"
    script.write_text(f"#!/bin/sh\ntrap '' TERM\necho $$ > {pidfile}\nsleep 300\n")
    script.chmod(0o755)
    task = asyncio.create_task(run_command([str(script)], 60, 1024))
    await eventually(_async_exists(pidfile), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert task.cancelled()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)


def _nonempty(path: Path) -> bool:
    return path.exists() and path.read_text().strip() != ""


def _async_exists(path: Path) -> Callable[[], Any]:
    async def check() -> bool:
        return _nonempty(path)

    return check


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["sh", "-c", "head -c 5000 /dev/zero"], "protocol"),  # more than max_output
        (["sh", "-c", "echo 'ERROR: [055]: unable to load info file' >&2; exit 55"], "other"),
        (["/nonexistent/pgbackrest"], "config"),
    ],
)
async def test_command_failures_have_reasons(argv: list[str], reason: str) -> None:
    from exporter.file_io import run_command
    from exporter.probe import ProbeError

    with pytest.raises(ProbeError) as err:
        await run_command(argv, 10, 1024)
    assert err.value.reason == reason
