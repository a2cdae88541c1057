"""The passive FIX reader against hostile files in place of a QuickFIX store and log:
huge, garbage, FIFOs with and without a writer, unreadable, directories, link loops.
Each is one stable reason and one log line; no read blocks, and a stuck one starves
no other target; /metrics stays fast and the exporter's usage flat.

The files are real (``HostileFiles``); the well-formed store and log lines follow
what the real QuickFIX 1.16 acceptor writes (``test_fix_store.py`` reads those).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.kinds.fix_store import KIND, FixStoreTarget
from exporter.kinds.fix_store.probe import FixStoreState
from exporter.scheduler import RunOutcome

from ... import faults
from ...helpers import Running, eventually, report, scrape_until
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
PREFIX = "FIX.4.4-ENGINE-VENUE"
SEQNUMS = "00000000000000000004 : 00000000000000000004"
LINE = "20261123-02:36:37.887566000 : 8=FIX.4.4\x019=5\x0135=0\x0149=VENUE\x0156=ENGINE\x01\n"
LOG_REASONS: dict[FileBehaviour, str | None] = {
    **faults.FILE_REASONS,
    "huge": None,  # a log is tailed: the first read starts backfill_bytes before its end
    "garbage": None,  # lines that are not FIX are skipped
    "non-utf8": None,
}


def _store(directory: Path, log_lines: int = 1) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{PREFIX}.seqnums").write_text(SEQNUMS)
    (directory / f"{PREFIX}.session").write_text("20261123-02:36:37")
    (directory / f"{PREFIX}.messages.current.log").write_text(LINE * log_lines)
    (directory / f"{PREFIX}.event.current.log").write_text(
        "20261123-02:36:37.887156000 : Received logon request\n"
    )
    return directory


def _target(directory: Path, name: str = "sim", extra: str = "") -> FixStoreTarget:
    text = f"""
fix_store:
  - name: {name}
    store_path: "{directory}"
    sender_comp_id: ENGINE
    target_comp_id: VENUE
    interval: 1s
    timeout: 500ms
{extra}
"""
    return faults.parse_target(text, "fix_store", FixStoreTarget)


def _sample(out: RunOutcome, name: str, *labels: str) -> float | None:
    found = [
        s.value  # type: ignore[union-attr]
        for s in out.samples
        if s.family.name == f"tradeops_fix_session_{name}" and s.labels[1:] == labels
    ]
    return found[0] if found else None


@pytest.mark.parametrize("behaviour", FILE_BEHAVIOURS)
async def test_each_hostile_seqnums_file_has_one_stable_reason(
    behaviour: FileBehaviour, tmp_path: Path, hostile_files: HostileFiles
) -> None:
    directory = _store(tmp_path / "store")
    hostile_files.make(directory / f"{PREFIX}.seqnums", behaviour)
    target = _target(directory)
    outs, state = await faults.fresh_runs(KIND, target, 5)
    assert faults.same_reason(outs) == faults.FILE_REASONS[behaviour]
    assert max(o.duration for o in outs) < 0.4  # refused, never waited for (timeout 500ms)
    assert state.budget.used <= 4096  # the huge file and the FIFOs were not read
    record_fault("fix_store", behaviour, faults.FILE_REASONS[behaviour])


@pytest.mark.parametrize("behaviour", FILE_BEHAVIOURS)
async def test_each_hostile_messages_log_has_one_stable_reason(
    behaviour: FileBehaviour, tmp_path: Path, hostile_files: HostileFiles
) -> None:
    directory = _store(tmp_path / "store")
    hostile_files.make(directory / f"{PREFIX}.messages.current.log", behaviour)
    target = _target(directory)
    outs, state = await faults.fresh_runs(KIND, target, 5)
    assert faults.same_reason(outs) == LOG_REASONS[behaviour]
    assert max(o.duration for o in outs) < 0.4
    assert state.messages.bytes_read <= target.backfill_bytes


async def test_a_backlog_beyond_the_budget_is_read_over_several_runs(tmp_path: Path) -> None:
    """The budget bounds one run's reading of the logs; a backlog is not an error."""
    lines = 4000  # 4000 lines of 76 bytes: about 300 KiB
    directory = _store(tmp_path / "store", log_lines=lines)
    target = _target(directory, extra="    response_budget: 64KiB")
    outs, _ = await faults.fresh_runs(KIND, target, 6)
    assert all(o.ok for o in outs), [o.error for o in outs]
    counted = [_sample(o, "messages_total", "inbound", "heartbeat") or 0.0 for o in outs]
    assert 0 < counted[0] < lines
    assert counted == sorted(counted) and counted[-1] == lines, counted
    assert (_sample(outs[0], "log_backlog_bytes", "messages") or 0) > 0
    assert _sample(outs[-1], "log_backlog_bytes", "messages") == 0


async def test_closing_a_state_does_not_wait_for_a_stuck_read(tmp_path: Path) -> None:
    """A read stuck in the kernel (a hung mount; no real file hangs once FIFOs are
    refused, so a call blocked on an event stands in) must not hold up a config
    reload or shutdown: the files are closed when the read returns."""
    target = _target(_store(tmp_path / "store"))
    state = FixStoreState(target)
    assert (await faults.repeat(KIND, target, state, 1))[0].ok
    assert state.messages.file is not None
    release = threading.Event()
    stuck = asyncio.ensure_future(state.io.call(release.wait, 30))
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    await asyncio.wait_for(state.aclose(), 1)
    assert time.perf_counter() - start < 0.1
    out = (await faults.repeat(KIND, target, state, 1))[0]
    assert out.reason == "timeout" and "has not returned" in str(out.error)
    assert state.messages.file is not None  # the stuck worker may still use it
    release.set()
    await stuck

    async def closed() -> bool:
        return state.messages.file is None and state.events.file is None

    await eventually(closed, timeout=5)


async def test_many_failed_runs_log_once_and_metrics_stay_fast(
    tmp_path: Path,
    hostile_files: HostileFiles,
    exporter_factory: Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every hostile store, and six more FIFOs: stuck reads used to fill the shared
    thread pool (6 workers here) and time out the healthy session too."""
    caplog.set_level(logging.WARNING, logger="exporter")
    expected: dict[str, str] = {}
    directories: dict[str, Path] = {}
    cases: list[tuple[str, FileBehaviour]] = [(b, b) for b in file_behaviours_here()]
    cases += [(f"fifo-{i}", "fifo") for i in range(6)]
    for name, behaviour in cases:
        directory = directories[name] = _store(tmp_path / name)
        hostile_files.make(directory / f"{PREFIX}.seqnums", behaviour)
        expected[name] = faults.FILE_REASONS[behaviour]
    directories["healthy"] = _store(tmp_path / "healthy")
    paths = {name: f'store_path: "{d}"' for name, d in directories.items()}
    common = "sender_comp_id: ENGINE, target_comp_id: VENUE, interval: 500ms, timeout: 450ms"
    run: Running = await exporter_factory(faults.targets_yaml("fix_store", paths, common))
    await scrape_until(run, faults.each_ran("fix_store", directories, 6), timeout=30)
    scrapes, _ = await faults.check_episodes(run, "fix_store", expected, caplog.records)
    report(f"fix_store faults: /metrics {scrapes.latency} with {len(expected)} hostile stores")


async def test_usage_plateaus_over_a_thousand_runs(
    tmp_path: Path, hostile_files: HostileFiles
) -> None:
    """Every hostile seqnums file in turn; the torn ones (garbage, not UTF-8: read again
    5 times over 30 ms) one run in 25."""
    fast: list[tuple[FixStoreTarget, FixStoreState]] = []
    torn: list[tuple[FixStoreTarget, FixStoreState]] = []
    for behaviour in file_behaviours_here():
        directory = _store(tmp_path / behaviour)
        hostile_files.make(directory / f"{PREFIX}.seqnums", behaviour)
        target = _target(directory, behaviour)
        (torn if behaviour in ("garbage", "non-utf8") else fast).append(
            (target, FixStoreState(target))
        )
    turns = faults.rotate(KIND, fast * 8 + torn)  # 48 fast runs, 2 torn
    flat = await faults.plateau(turns, cycles=1000, warmup=100)
    report(f"fix_store hostile stores: {flat}")
    expected = {faults.FILE_REASONS[b] for b in file_behaviours_here()}
    reasons = set(flat.reasons) - {"timeout"}  # a run may overrun, loaded
    assert reasons == expected
    flat.assert_flat()
