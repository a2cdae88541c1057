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
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter import config as cfg
from exporter.probes.fix_store import KIND, FixStoreState, FixStoreTarget
from exporter.scheduler import RunOutcome, run_probe

from ..helpers import Running, Series, eventually, report, scrape_until, value
from ..hostile import Usage, record_fault
from .test_backups_faults import (
    FILE_BEHAVIOURS,
    FileBehaviour,
    HostileFiles,
    can_refuse_reads,
    check_episodes,
    hostile_files,
)

__all__ = ["hostile_files"]

Factory = Callable[..., Any]
PREFIX = "FIX.4.4-ENGINE-VENUE"
SEQNUMS = "00000000000000000004 : 00000000000000000004"
LINE = "20261123-02:36:37.887566000 : 8=FIX.4.4\x019=5\x0135=0\x0149=VENUE\x0156=ENGINE\x01\n"
STORE_REASONS: dict[FileBehaviour, str] = {
    "huge": "protocol",
    "garbage": "protocol",
    "non-utf8": "protocol",
    "fifo": "config",
    "stream": "config",
    "unreadable": "auth",
    "not-a-file": "config",
    "loop": "config",
}
LOG_REASONS: dict[FileBehaviour, str | None] = {
    **STORE_REASONS,
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
    target = cfg.parse(text, "cfg.yml").targets["fix_store"][0]
    assert isinstance(target, FixStoreTarget)
    return target


async def _runs(target: FixStoreTarget, state: FixStoreState, n: int) -> list[RunOutcome]:
    return [await run_probe(KIND, target, state, target.timeout_s) for _ in range(n)]


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
    state = FixStoreState(target)
    outs = await _runs(target, state, 5)
    await state.aclose()
    assert {o.reason for o in outs} == {STORE_REASONS[behaviour]}, [str(o.error) for o in outs]
    assert max(o.duration for o in outs) < 0.4  # refused, never waited for (timeout 500ms)
    assert state.budget.used <= 4096  # the huge file and the FIFOs were not read
    record_fault("fix_store", behaviour, STORE_REASONS[behaviour])


@pytest.mark.parametrize("behaviour", FILE_BEHAVIOURS)
async def test_each_hostile_messages_log_has_one_stable_reason(
    behaviour: FileBehaviour, tmp_path: Path, hostile_files: HostileFiles
) -> None:
    directory = _store(tmp_path / "store")
    hostile_files.make(directory / f"{PREFIX}.messages.current.log", behaviour)
    target = _target(directory)
    state = FixStoreState(target)
    outs = await _runs(target, state, 5)
    await state.aclose()
    assert {o.reason for o in outs} == {LOG_REASONS[behaviour]}, [str(o.error) for o in outs]
    assert max(o.duration for o in outs) < 0.4
    assert state.messages.bytes_read <= target.backfill_bytes


async def test_a_backlog_beyond_the_budget_is_read_over_several_runs(tmp_path: Path) -> None:
    """The budget bounds one run's reading of the logs; a backlog is not an error."""
    lines = 4000  # 4000 lines of 76 bytes: about 300 KiB
    directory = _store(tmp_path / "store", log_lines=lines)
    target = _target(directory, extra="    response_budget: 64KiB")
    state = FixStoreState(target)
    outs = await _runs(target, state, 6)
    await state.aclose()
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
    assert (await _runs(target, state, 1))[0].ok
    assert state.messages.file is not None
    release = threading.Event()
    stuck = asyncio.ensure_future(state.io.call(release.wait, 30))
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    await asyncio.wait_for(state.aclose(), 1)
    assert time.perf_counter() - start < 0.1
    out = (await _runs(target, state, 1))[0]
    assert out.reason == "timeout" and "has not returned" in str(out.error)
    assert state.messages.file is not None  # the stuck worker may still use it
    release.set()
    await stuck

    async def closed() -> bool:
        return state.messages.file is None and state.events.file is None

    await eventually(closed, timeout=5)


def _config(directories: dict[str, Path]) -> str:
    rows = "".join(
        f'  - {{name: {name}, store_path: "{d}", sender_comp_id: ENGINE,'
        " target_comp_id: VENUE, interval: 500ms, timeout: 450ms}\n"
        for name, d in directories.items()
    )
    return "fix_store:\n" + rows


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
    cases: list[tuple[str, FileBehaviour]] = [
        (b, b) for b in FILE_BEHAVIOURS if b != "unreadable" or can_refuse_reads()
    ]
    cases += [(f"fifo-{i}", "fifo") for i in range(6)]
    for name, behaviour in cases:
        directory = directories[name] = _store(tmp_path / name)
        hostile_files.make(directory / f"{PREFIX}.seqnums", behaviour)
        expected[name] = STORE_REASONS[behaviour]
    directories["healthy"] = _store(tmp_path / "healthy")
    run: Running = await exporter_factory(_config(directories))

    def six_runs_each(m: Series) -> bool:
        runs = "tradeops_probe_runs_total"
        return all((value(m, runs, kind="fix_store", target=t) or 0) >= 6 for t in directories)

    await scrape_until(run, six_runs_each, timeout=30)
    took, _ = await check_episodes(run, "fix_store", expected, caplog.records)
    assert max(took) < 0.5, f"/metrics took {max(took):.3f}s"
    report(
        f"fix_store faults: /metrics median {statistics.median(took) * 1000:.1f} ms, "
        f"max {max(took) * 1000:.1f} ms with {len(expected)} hostile stores"
    )


async def test_usage_plateaus_over_a_thousand_runs(
    tmp_path: Path, hostile_files: HostileFiles
) -> None:
    fast: list[tuple[FixStoreTarget, FixStoreState]] = []
    torn: list[tuple[FixStoreTarget, FixStoreState]] = []  # read again 5 times over 30 ms
    for behaviour in FILE_BEHAVIOURS:
        if behaviour == "unreadable" and not can_refuse_reads():
            continue
        directory = _store(tmp_path / behaviour)
        hostile_files.make(directory / f"{PREFIX}.seqnums", behaviour)
        target = _target(directory, behaviour)
        slow = behaviour in ("garbage", "non-utf8")
        (torn if slow else fast).append((target, FixStoreState(target)))

    async def cycle(n: int, runs: list[tuple[FixStoreTarget, FixStoreState]]) -> set[str | None]:
        seen: set[str | None] = set()
        for i in range(n):
            target, state = runs[i % len(runs)]
            seen.add((await run_probe(KIND, target, state, target.timeout_s)).reason)
        return seen

    await cycle(100, fast)  # warm up: caches, allocator arenas
    await cycle(4, torn)
    await asyncio.sleep(0.05)
    before = Usage.now()
    start = time.perf_counter()
    reasons = await cycle(1000, fast)
    elapsed = time.perf_counter() - start
    reasons |= await cycle(40, torn)
    await asyncio.sleep(0.05)  # a run's worker ends just after handing its result
    after = Usage.now()
    expected = set(STORE_REASONS.values()) - (set() if can_refuse_reads() else {"auth"})
    assert reasons - {"timeout"} == expected  # a run may overrun on a loaded machine
    assert after.fds <= before.fds + 2, (before, after)
    assert after.tasks <= before.tasks + 2, (before, after)
    assert after.threads <= before.threads, (before, after)
    assert after.rss_bytes - before.rss_bytes < 16 << 20, (before, after)
    report(
        f"fix_store hostile stores x1000: {elapsed:.2f} ms/run; fds {before.fds}->{after.fds}, "
        f"tasks {before.tasks}->{after.tasks}, threads {before.threads}->{after.threads}, "
        f"RSS {before.rss_bytes >> 20}->{after.rss_bytes >> 20} MiB"
    )
