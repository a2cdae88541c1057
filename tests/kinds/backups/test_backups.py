"""The backups kind end to end, through the exporter and the scheduler, against real
pg_dump output, a real pgBackRest stanza and drill records: what is served, how a
failing, hanging or hostile source fails, and the objectives beside the data."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.kinds.backups import KIND
from exporter.kinds.backups.probe import BackupState
from exporter.scheduler import run_probe
from stack import Postgres
from stack.backups import PgBackRest, dump_backup, write_drill_record

from ... import faults
from ...fixtures_backups import archived_pg, backup_dir, backup_target, backups_yaml
from ...helpers import Running, Series, eventually, scrape_until, value

__all__ = ["archived_pg", "backup_dir"]

Factory = Callable[..., Any]
Archived = tuple[Postgres, PgBackRest]


async def _settled(run: Running, runs: int = 1) -> Series:
    """The scrape that shows the target's ``runs``-th run finished (not a later one)."""

    def done(m: Series) -> bool:
        return (value(m, "tradeops_probe_runs_total", kind="backups", target="set") or 0) >= runs

    return await scrape_until(run, done, timeout=20)


def _errors(m: Series, reason: str) -> float:
    return value(m, "tradeops_probe_errors_total", kind="backups", target="set", reason=reason) or 0


async def test_fresh_dump_reports_recent_backup_and_verified_checksum(
    archived_pg: Archived, backup_dir: Path, exporter_factory: Factory
) -> None:
    pg, _ = archived_pg
    before = time.time()
    dump = dump_backup(pg, backup_dir)
    started = time.time()
    run: Running = await exporter_factory(backups_yaml(f"{{type: directory, path: {backup_dir}}}"))
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


async def test_pgbackrest_stanza_backups_and_wal_archive(
    archived_pg: Archived, exporter_factory: Factory
) -> None:
    pg, rest = archived_pg
    cmd = json.dumps(rest.command)
    run: Running = await exporter_factory(
        backups_yaml(
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
        backups_yaml(
            f'{{type: pgbackrest, stanza: main, command: ["{wrapper}"], command_timeout: 300ms}}'
        )
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
        backups_yaml(f"{{type: pgbackrest, stanza: main, output_file: {saved}}}")
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
    before = faults.io_threads()
    run: Running = await exporter_factory(
        backups_yaml(f"{{type: pgbackrest, stanza: main, output_file: {saved}}}", timeout="300ms")
    )

    async def refused() -> bool:
        return _errors(await run.scrape(), "config") >= 3

    await eventually(refused, timeout=20)
    m = await run.scrape()
    assert _errors(m, "timeout") == 0
    assert value(m, "tradeops_up", kind="backups", target="set") == 0
    assert faults.io_threads() == before  # nothing stuck in open()
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
    target = backup_target({"type": "pgbackrest", "stanza": "main", "output_file": str(saved)})
    state = BackupState(target)
    release = threading.Event()
    before = faults.io_threads()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(state.io.call(release.wait, 30), 0.2)  # the deadline
    try:
        outs = [await run_probe(KIND, target, state, 0.3) for _ in range(3)]
        assert {o.reason for o in outs} == {"timeout"}, [o.error for o in outs]
        assert max(o.duration for o in outs) < 0.1
        assert "still blocked" in str(outs[0].error)
        assert faults.io_threads() == before + 1  # one stuck call, not one per run
    finally:
        release.set()

    async def threads_back() -> bool:
        return faults.io_threads() == before

    await eventually(threads_back, timeout=5)
    assert (await run_probe(KIND, target, state, 0.3)).ok


async def test_missing_directory_is_an_error_not_an_empty_set(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(
        backups_yaml(f"{{type: directory, path: {tmp_path / 'not-mounted'}}}")
    )
    m = await _settled(run)
    assert value(m, "tradeops_up", kind="backups", target="set") == 0
    assert _errors(m, "other") >= 1
    assert value(m, "tradeops_backup_retention_window_backups", target="set", type="full") is None


def _drill(m: Series, series: str) -> float | None:
    return value(m, f"tradeops_backup_restore_drill_{series}", target="set")


async def test_restore_drill_records(
    archived_pg: Archived, tmp_path: Path, exporter_factory: Factory
) -> None:
    record = tmp_path / "drill.json"
    ok_at = time.time() - 120
    write_drill_record(record, True, timestamp=ok_at, duration=4.5, rows=20000, checksums=3)
    run: Running = await exporter_factory(backups_yaml(f"{{type: restore_drill, path: {record}}}"))
    m = await _settled(run)
    assert _drill(m, "last_success") == 1
    assert _drill(m, "last_timestamp_seconds") == pytest.approx(ok_at, abs=0.01)
    assert _drill(m, "last_duration_seconds") == 4.5
    assert _drill(m, "last_checksums_verified") == 3
    assert _drill(m, "last_success_timestamp_seconds") == pytest.approx(ok_at, abs=0.01)
    assert _drill(m, "last_rows_verified") == 20000
    failed_at = time.time() - 30
    write_drill_record(
        record, False, timestamp=failed_at, duration=1.0, checksums=0, checksums_failed=2
    )

    m = await scrape_until(run, lambda m: _drill(m, "last_success") == 0)
    assert _drill(m, "last_success_timestamp_seconds") == pytest.approx(ok_at, abs=0.01)
    assert _drill(m, "last_checksums_failed") == 2
    assert _drill(m, "last_timestamp_seconds") == pytest.approx(failed_at, abs=0.01)
    assert _drill(m, "last_duration_seconds") == 1.0
    assert _drill(m, "last_checksums_verified") == 0
    record.write_text("{not json")

    async def protocol() -> bool:
        return _errors(await run.scrape(), "protocol") >= 1

    await eventually(protocol, timeout=10)
    m = await run.scrape()
    assert value(m, "tradeops_up", kind="backups", target="set") == 0
    assert _drill(m, "last_success") is None


async def test_objectives_are_exported_with_the_data(
    archived_pg: Archived, backup_dir: Path, tmp_path: Path, exporter_factory: Factory
) -> None:
    pg, rest = archived_pg
    dump_backup(pg, backup_dir)
    record = tmp_path / "drill.json"
    write_drill_record(record, True, timestamp=time.time() - 60, duration=1.0, rows=1)
    cmd = json.dumps(rest.command)
    rows = {
        "dumps": f"source: {{type: directory, path: {backup_dir}}}",
        "stanza": f"source: {{type: pgbackrest, stanza: {rest.stanza}, command: {cmd}}},"
        " rpo_objective: 90m, restore_drill_max_interval: 48h, min_backups: 3",
        "drills": f"source: {{type: restore_drill, path: {record}}}, min_backups: 0",
        "unmounted": f"source: {{type: directory, path: {tmp_path / 'not-mounted'}}}",
    }
    yaml = faults.targets_yaml("backups", rows, "interval: 3s, timeout: 2500ms")
    run: Running = await exporter_factory(yaml)

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
