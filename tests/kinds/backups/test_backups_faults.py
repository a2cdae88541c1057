"""The backups kind against hostile inputs: files that are huge, garbage, FIFOs,
unreadable, directories or link loops where a file is expected, and commands that
hang, print without end, print garbage or fail loudly. Each is one stable reason,
one log line, a fast /metrics and no growth of threads, processes or memory.

The files are real (a sparse file, a FIFO, a write-only kernel file); the commands
are small shell scripts standing in for a broken pgbackrest, which cannot be made
to misbehave on cue. ``HostileFiles`` is shared with the fix_store and drills suites.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.kinds.backups import KIND, BackupTarget
from exporter.kinds.backups.probe import BackupState

from ... import faults
from ...fixtures_backups import backup_dir, check_refused, hostile_target
from ...helpers import Running, eventually, report, scrape_until
from ...hostile import (
    FILE_BEHAVIOURS,
    FileBehaviour,
    HostileFiles,
    file_behaviours_here,
    hostile_files,
    record_fault,
)

__all__ = ["backup_dir", "hostile_files"]

Factory = Callable[..., Any]

# --- the backups kind ----------------------------------------------------------

COMMANDS: dict[str, tuple[str, str]] = {
    "hung-command": ("sleep 300", "timeout"),
    "endless-output": ("exec yes", "protocol"),
    "endless-stderr": ("exec yes >&2", "protocol"),
    "garbage-output": ("head -c 4096 /dev/urandom", "protocol"),
    "failing-command": (
        "head -c 20000 /dev/urandom >&2; echo >&2; echo 'ERROR: [055]: unable to load info' >&2;"
        " exit 55",
        "other",
    ),
    "leaves-child": ("sleep 300 & echo '['", "timeout"),
}
"""behaviour -> (shell script standing in for pgbackrest, reason)."""
INFO_OK = json.dumps([{"name": "main", "status": {"code": 0, "message": "ok"}}])


def _target(name: str, source: str, **extra: str) -> BackupTarget:
    return hostile_target(
        "backups", BackupTarget, name, interval="1s", timeout="800ms", source=source, **extra
    )


def _output_source(path: Path) -> str:
    return f'{{type: pgbackrest, stanza: main, output_file: "{path}"}}'


def _command_source(directory: Path, behaviour: str) -> str:
    script = directory / f"{behaviour}.sh"
    script.write_text(f"#!/bin/sh\n{COMMANDS[behaviour][0]}\n")
    script.chmod(0o755)
    hangs = behaviour in ("hung-command", "leaves-child")  # the rest: the run's deadline
    timeout = ", command_timeout: 200ms" if hangs else ""
    return f'{{type: pgbackrest, stanza: main, command: ["{script}"]{timeout}}}'


@pytest.mark.parametrize("behaviour", FILE_BEHAVIOURS)
async def test_each_hostile_output_file_has_one_stable_reason(
    behaviour: FileBehaviour, tmp_path: Path, hostile_files: HostileFiles
) -> None:
    saved = hostile_files.make(tmp_path / "info.json", behaviour)
    await check_refused(KIND, _target("set", _output_source(saved)), behaviour, slowest=0.5)


@pytest.mark.parametrize("behaviour", list(COMMANDS))
async def test_each_hostile_command_has_one_stable_reason(behaviour: str, tmp_path: Path) -> None:
    target = _target("set", _command_source(tmp_path, behaviour), response_budget="64KiB")
    before = faults.children()
    outs, _ = await faults.fresh_runs(KIND, target, 3)
    reason = COMMANDS[behaviour][1]
    assert faults.same_reason(outs) == reason
    assert max(o.duration for o in outs) < 0.75  # command_timeout 200ms + TERM grace
    assert faults.children() == before  # killed and reaped, whatever it left behind
    if behaviour == "failing-command":
        assert str(outs[0].error).endswith(
            "exited with status 55: ERROR: [055]: unable to load info"
        )
    if behaviour == "endless-stderr":
        assert "response budget of 64KiB" in str(outs[0].error)
    record_fault("backups", behaviour, reason)


async def test_a_child_left_holding_the_output_is_killed_with_the_run(tmp_path: Path) -> None:
    """The command exits but its child keeps stdout open: the run times out, and the
    child, in the command's process group, must not outlive it."""
    pidfile = tmp_path / "child.pid"
    script = tmp_path / "forks.sh"
    script.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pidfile}\necho '['\n")
    script.chmod(0o755)
    source = f'{{type: pgbackrest, stanza: main, command: ["{script}"], command_timeout: 200ms}}'
    target = _target("set", source)
    (out,), _ = await faults.fresh_runs(KIND, target, 1)
    assert out.reason == "timeout"
    pid = int(pidfile.read_text())

    async def dead() -> bool:  # signalled with the run; exiting takes a moment
        return _process_state(pid) in ("gone", "Z")

    await eventually(dead, timeout=5)


def _process_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return "gone"


async def test_manifests_beyond_the_response_budget_fail_the_run(backup_dir: Path) -> None:
    """Forty manifests of 2 KiB each are more than a 64 KiB budget: the run fails as
    protocol instead of reading on, and a larger budget reads them all."""
    for i in range(40):
        dump = backup_dir / f"d{i}.dump"
        dump.write_bytes(b"x")
        doc = {"file": dump.name, "status": "success", "finish": time.time(), "pad": "p" * 2048}
        (backup_dir / f"d{i}.dump.manifest.json").write_text(json.dumps(doc))
    source = f'{{type: directory, path: "{backup_dir}"}}'
    small = _target("set", source, response_budget="64KiB")
    outs, _ = await faults.fresh_runs(KIND, small, 3)
    assert faults.same_reason(outs) == "protocol"
    assert "response budget of 64KiB" in str(outs[0].error)
    large = _target("set", source, response_budget="1MiB")
    (ok,), _ = await faults.fresh_runs(KIND, large, 1)
    assert ok.ok, ok.error
    record_fault("backups", "over-budget", "protocol")


async def test_hostile_files_among_manifests_are_skipped_or_counted(
    backup_dir: Path, hostile_files: HostileFiles
) -> None:
    """One bad manifest must not hide the good ones: FIFOs, directories and loops that
    match the glob are not opened, the rest count as invalid manifests."""
    dump = backup_dir / "good.dump"
    dump.write_bytes(b"a dump")
    (backup_dir / "good.dump.manifest.json").write_text(
        json.dumps({"file": dump.name, "status": "success", "finish": time.time()})
    )
    cases = file_behaviours_here()
    for behaviour in cases:
        hostile_files.make(backup_dir / f"{behaviour}.manifest.json", behaviour)
    target = _target("set", f'{{type: directory, path: "{backup_dir}"}}')
    outs, state = await faults.fresh_runs(KIND, target, 3)
    assert all(o.ok for o in outs), [o.error for o in outs]
    invalid = [
        s.value  # type: ignore[union-attr]
        for s in outs[-1].samples
        if s.family.name.endswith("invalid_manifests")
    ]
    # huge, garbage, non-utf8 and unreadable; the FIFOs, the directory and the loop are skipped
    assert invalid == [3 + ("unreadable" in cases)]
    assert state.budget.used < 64 * 1024


async def test_many_failed_runs_log_once_and_metrics_stay_fast(
    tmp_path: Path,
    hostile_files: HostileFiles,
    exporter_factory: Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter")
    expected: dict[str, str] = {}
    sources: dict[str, str] = {}
    for behaviour in file_behaviours_here():
        path = hostile_files.make(tmp_path / f"{behaviour}.json", behaviour)
        sources[behaviour] = _output_source(path)
        expected[behaviour] = faults.FILE_REASONS[behaviour]
    for command, (_, reason) in COMMANDS.items():
        sources[command] = _command_source(tmp_path, command)
        expected[command] = reason
    healthy = tmp_path / "healthy.json"
    healthy.write_text(INFO_OK)
    sources["healthy"] = _output_source(healthy)
    rows = {name: f"source: {source}" for name, source in sources.items()}
    common = "interval: 500ms, timeout: 450ms, response_budget: 64KiB"
    run: Running = await exporter_factory(faults.targets_yaml("backups", rows, common))
    await scrape_until(run, faults.each_ran("backups", sources, 6), timeout=30)
    scrapes, longest = await faults.check_episodes(run, "backups", expected, caplog.records)
    report(
        f"backups faults: /metrics {scrapes.latency} with {len(expected)} hostile targets;"
        f" longest log line {longest} characters"
    )


async def test_usage_plateaus_over_a_thousand_runs(
    tmp_path: Path, hostile_files: HostileFiles
) -> None:
    """Hostile files and commands in turn, ten file runs to a command run."""
    cases = file_behaviours_here()
    files = []
    for behaviour in cases:
        path = hostile_files.make(tmp_path / f"{behaviour}.json", behaviour)
        target = _target(behaviour, _output_source(path))
        files.append((target, BackupState(target)))
    commands = []
    for command in ("garbage-output", "failing-command"):
        target = _target(command, _command_source(tmp_path, command))
        commands.append((target, BackupState(target)))
    kids = faults.children()
    # settle: the child watcher's threads end after their wait
    turns = faults.rotate(KIND, files * 5 + commands * 2)  # 40 file runs, 4 command runs
    flat = await faults.plateau(turns, cycles=1100, warmup=110, settle=0.1)
    report(f"backups hostile files and commands: {flat}")
    reasons = set(flat.reasons) - {"timeout"}  # a run may overrun, loaded
    assert reasons == {faults.FILE_REASONS[b] for b in cases} | {"other"}
    assert faults.children() == kids
    flat.assert_flat()
