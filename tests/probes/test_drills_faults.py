"""The drills kind against hostile records: huge, garbage, FIFOs, unreadable, a socket
or a link loop where a record is expected, and more records than the budget. Each
is one stable reason and one log line; /metrics stays fast and the usage flat.

The files are real (``HostileFiles``); the good records are written by the paging
drill's own ``write_record``.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter import config as cfg
from exporter.probes.drills import KIND, DrillsState, DrillsTarget
from exporter.scheduler import RunOutcome, run_probe

from ..helpers import Running, Series, report, scrape_until, value
from ..hostile import Usage, record_fault
from .test_backups_faults import (
    FILE_BEHAVIOURS,
    FileBehaviour,
    HostileFiles,
    can_refuse_reads,
    check_episodes,
    hostile_files,
    io_threads,
)
from .test_drills import record

__all__ = ["hostile_files"]

Factory = Callable[..., Any]
REASONS: dict[FileBehaviour, str] = {
    "huge": "protocol",
    "garbage": "protocol",
    "non-utf8": "protocol",
    "fifo": "config",
    "stream": "config",
    "unreadable": "auth",
    "not-a-file": "config",  # a socket: a directory is a valid path (of records)
    "loop": "config",
}


def _target(path: Path, name: str = "shift-start", extra: str = "") -> DrillsTarget:
    text = f"""
drills:
  - name: {name}
    path: "{path}"
    interval: 1s
    timeout: 500ms
{extra}
"""
    target = cfg.parse(text, "cfg.yml").targets["drills"][0]
    assert isinstance(target, DrillsTarget)
    return target


async def _runs(target: DrillsTarget, state: DrillsState, n: int) -> list[RunOutcome]:
    return [await run_probe(KIND, target, state, target.timeout_s) for _ in range(n)]


def _make(files: HostileFiles, path: Path, behaviour: FileBehaviour) -> Path:
    return files.make(path, behaviour, not_a_file="socket")


@pytest.mark.parametrize("behaviour", FILE_BEHAVIOURS)
async def test_each_hostile_record_file_has_one_stable_reason(
    behaviour: FileBehaviour, tmp_path: Path, hostile_files: HostileFiles
) -> None:
    path = _make(hostile_files, tmp_path / "latest.json", behaviour)
    target = _target(path)
    state = DrillsState(target)
    before = io_threads()
    outs = await _runs(target, state, 5)
    assert {o.reason for o in outs} == {REASONS[behaviour]}, [str(o.error) for o in outs]
    assert max(o.duration for o in outs) < 0.4  # refused, never waited for (timeout 500ms)
    assert state.budget.used < 8192  # the huge file and the FIFOs were not read
    await asyncio.sleep(0.05)  # a run's worker ends just after handing its result
    assert io_threads() == before
    record_fault("drills", behaviour, REASONS[behaviour])


async def test_in_a_directory_what_is_not_a_file_is_skipped_unopened(
    tmp_path: Path, hostile_files: HostileFiles
) -> None:
    """FIFOs, sockets, directories and dangling loops that match the glob are not
    records: the good ones are still read, and nothing blocks."""
    now = time.time()
    record(tmp_path, True, now - 60, "ok")
    record(tmp_path, False, now - 30, "failed")
    for behaviour in ("fifo", "stream", "not-a-file", "loop"):
        _make(hostile_files, tmp_path / f"{behaviour}.json", behaviour)
    (tmp_path / "a-directory.json").mkdir()
    target = _target(tmp_path)
    outs = await _runs(target, DrillsState(target), 3)
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
        path = record(tmp_path, True, now - 60 - i, f"drill-{i}")
        path.write_text(path.read_text()[:-2] + ', "pad": "' + "p" * 1024 + '"}\n')
    small = _target(tmp_path, extra="    response_budget: 64KiB")
    outs = await _runs(small, DrillsState(small), 3)
    assert {o.reason for o in outs} == {"protocol"}, [o.error for o in outs]
    assert "response budget of 64KiB" in str(outs[0].error)
    large = _target(tmp_path, extra="    response_budget: 1MiB")
    (ok,) = await _runs(large, DrillsState(large), 1)
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
    for behaviour in FILE_BEHAVIOURS:
        if behaviour != "unreadable" or can_refuse_reads():
            paths[behaviour] = _make(hostile_files, tmp_path / f"{behaviour}.json", behaviour)
    paths["healthy"] = record(tmp_path / "healthy", True, time.time() - 60, "ok")
    rows = "".join(
        f'  - {{name: {name}, path: "{p}", interval: 500ms, timeout: 450ms}}\n'
        for name, p in paths.items()
    )
    run: Running = await exporter_factory("drills:\n" + rows)

    def six_runs_each(m: Series) -> bool:
        runs = "tradeops_probe_runs_total"
        return all((value(m, runs, kind="drills", target=t) or 0) >= 6 for t in paths)

    await scrape_until(run, six_runs_each, timeout=30)
    hostile = {name: REASONS[name] for name in paths if name != "healthy"}  # type: ignore[index]
    took, _ = await check_episodes(run, "drills", hostile, caplog.records)
    assert max(took) < 0.5, f"/metrics took {max(took):.3f}s"
    report(
        f"drills faults: /metrics median {statistics.median(took) * 1000:.1f} ms, "
        f"max {max(took) * 1000:.1f} ms with {len(hostile)} hostile targets"
    )


async def test_usage_plateaus_over_a_thousand_runs(
    tmp_path: Path, hostile_files: HostileFiles
) -> None:
    runs = []
    for behaviour in FILE_BEHAVIOURS:
        if behaviour == "unreadable" and not can_refuse_reads():
            continue
        path = _make(hostile_files, tmp_path / f"{behaviour}.json", behaviour)
        target = _target(path, behaviour)
        runs.append((target, DrillsState(target)))

    async def cycle(n: int) -> set[str | None]:
        seen: set[str | None] = set()
        for i in range(n):
            target, state = runs[i % len(runs)]
            seen.add((await run_probe(KIND, target, state, target.timeout_s)).reason)
        return seen

    await cycle(100)  # warm up: caches, allocator arenas
    await asyncio.sleep(0.05)
    before = Usage.now()
    start = time.perf_counter()
    reasons = await cycle(1000)
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.05)  # a run's worker ends just after handing its result
    after = Usage.now()
    expected = set(REASONS.values()) - (set() if can_refuse_reads() else {"auth"})
    assert reasons - {"timeout"} == expected  # a run may overrun on a loaded machine
    assert after.fds <= before.fds + 2, (before, after)
    assert after.tasks <= before.tasks + 2, (before, after)
    assert after.threads <= before.threads, (before, after)
    assert after.rss_bytes - before.rss_bytes < 16 << 20, (before, after)
    report(
        f"drills hostile records x1000: {elapsed:.2f} ms/run; fds {before.fds}->{after.fds}, "
        f"tasks {before.tasks}->{after.tasks}, threads {before.threads}->{after.threads}, "
        f"RSS {before.rss_bytes >> 20}->{after.rss_bytes >> 20} MiB"
    )
