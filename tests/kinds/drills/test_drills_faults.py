"""The drills kind against hostile records: huge, garbage, FIFOs, unreadable, a socket
or a link loop where a record is expected, and more records than the budget. Each
is one stable reason and one log line; /metrics stays fast and the usage flat.

The files are real (``HostileFiles``); the good records are written by the paging
drill's own ``write_record`` (``fixtures_backups.drill_record``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.kinds.drills import KIND, DrillsTarget
from exporter.kinds.drills.probe import DrillsState

from ... import faults
from ...fixtures_backups import check_refused, drill_record, hostile_target
from ...helpers import Running, report, scrape_until
from ...hostile import (
    FILE_BEHAVIOURS,
    FileBehaviour,
    HostileFiles,
    file_behaviours_here,
    hostile_files,
    record_fault,
)

__all__ = ["hostile_files"]

Factory = Callable[..., Any]


def _target(path: Path, name: str = "shift-start", **extra: str) -> DrillsTarget:
    return hostile_target(
        "drills", DrillsTarget, name, path=f'"{path}"', interval="1s", timeout="500ms", **extra
    )


def _make(files: HostileFiles, path: Path, behaviour: FileBehaviour) -> Path:
    # not a file: a socket, since a directory is a valid path (of records)
    return files.make(path, behaviour, not_a_file="socket")


@pytest.mark.parametrize("behaviour", FILE_BEHAVIOURS)
async def test_each_hostile_record_file_has_one_stable_reason(
    behaviour: FileBehaviour, tmp_path: Path, hostile_files: HostileFiles
) -> None:
    path = _make(hostile_files, tmp_path / "latest.json", behaviour)
    # refused, never waited for (timeout 500ms)
    await check_refused(KIND, _target(path), behaviour, slowest=0.4)


async def test_in_a_directory_what_is_not_a_file_is_skipped_unopened(
    tmp_path: Path, hostile_files: HostileFiles
) -> None:
    """FIFOs, sockets, directories and dangling loops that match the glob are not
    records: the good ones are still read, and nothing blocks."""
    now = time.time()
    drill_record(tmp_path, True, now - 60, "ok")
    drill_record(tmp_path, False, now - 30, "failed")
    for behaviour in ("fifo", "stream", "not-a-file", "loop"):
        _make(hostile_files, tmp_path / f"{behaviour}.json", behaviour)
    (tmp_path / "a-directory.json").mkdir()
    target = _target(tmp_path)
    outs, _ = await faults.fresh_runs(KIND, target, 3)
    assert all(o.ok for o in outs), [o.error for o in outs]
    count = [
        s.value  # type: ignore[union-attr]
        for s in outs[-1].samples
        if s.family.name == "tradeops_drill_records"
    ]
    assert count == [2]


async def test_records_beyond_the_response_budget_fail_the_run(tmp_path: Path) -> None:
    """A hundred records of about 1 KiB are more than a 64 KiB budget."""
    now = time.time()
    for i in range(100):
        path = drill_record(tmp_path, True, now - 60 - i, f"drill-{i}")
        path.write_text(path.read_text()[:-2] + ', "pad": "' + "p" * 1024 + '"}\n')
    small = _target(tmp_path, response_budget="64KiB")
    outs, _ = await faults.fresh_runs(KIND, small, 3)
    assert faults.same_reason(outs) == "protocol"
    assert "response budget of 64KiB" in str(outs[0].error)
    large = _target(tmp_path, response_budget="1MiB")
    (ok,), _ = await faults.fresh_runs(KIND, large, 1)
    assert ok.ok, ok.error
    record_fault("drills", "over-budget", "protocol")


async def test_many_failed_runs_log_once_and_metrics_stay_fast(
    tmp_path: Path,
    hostile_files: HostileFiles,
    exporter_factory: Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter")
    paths: dict[str, Path] = {}
    for behaviour in file_behaviours_here():
        paths[behaviour] = _make(hostile_files, tmp_path / f"{behaviour}.json", behaviour)
    paths["healthy"] = drill_record(tmp_path / "healthy", True, time.time() - 60, "ok")
    rows = {name: f'path: "{p}"' for name, p in paths.items()}
    run: Running = await exporter_factory(
        faults.targets_yaml("drills", rows, "interval: 500ms, timeout: 450ms")
    )
    await scrape_until(run, faults.each_ran("drills", paths, 6), timeout=30)
    hostile: dict[str, str] = {b: faults.FILE_REASONS[b] for b in file_behaviours_here()}
    scrapes, _ = await faults.check_episodes(run, "drills", hostile, caplog.records)
    report(f"drills faults: /metrics {scrapes.latency} with {len(hostile)} hostile targets")


async def test_usage_plateaus_over_a_thousand_runs(
    tmp_path: Path, hostile_files: HostileFiles
) -> None:
    runs = []
    for behaviour in file_behaviours_here():
        path = _make(hostile_files, tmp_path / f"{behaviour}.json", behaviour)
        target = _target(path, behaviour)
        runs.append((target, DrillsState(target)))
    flat = await faults.plateau(faults.rotate(KIND, runs), cycles=1000, warmup=100)
    report(f"drills hostile records: {flat}")
    expected = {faults.FILE_REASONS[b] for b in file_behaviours_here()}
    reasons = set(flat.reasons) - {"timeout"}  # a run may overrun, loaded
    assert reasons == expected
    flat.assert_flat()
