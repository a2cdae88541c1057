"""The fault suites' shared checks, with their margins in one place.

Every kind's fault suite asks the same questions of a misbehaving target: is each
run the same reason, is there one log line per episode, does ``/metrics`` stay
fast, do the exporter's file descriptors, tasks, threads and memory stay on a
plateau over a thousand failed runs. The peers themselves are in ``tests.hostile``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import cycle, pairwise
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from exporter import config as cfg
from exporter.logs import JsonFormatter, LogfmtFormatter
from exporter.model import TargetBase
from exporter.probe import ProbeKind, ProbeState
from exporter.scheduler import RunOutcome, run_probe

from .helpers import Running, Series, scrape_until, value, with_label
from .hostile import Behaviour, FileBehaviour, Usage, record_fault

TargetT = TypeVar("TargetT", bound=TargetBase)
StateT = TypeVar("StateT", bound=ProbeState)

MIB = 1 << 20
FD_MARGIN = 2
"""File descriptors a plateau may gain (a peer's handler still closing one)."""
TASK_MARGIN = 2
"""asyncio tasks a plateau may gain (the same)."""
RSS_MARGIN = 16 * MIB
"""Resident set a plateau may gain over its measured runs (the pytest process around
it moves a little)..."""
RSS_HALF_MARGIN = 4 * MIB
"""...and over their second half: a leak grows with the runs."""
PEAK_MARGIN = 50 * MIB
"""Resident set a flood (a huge announced length, filler without end) may add."""
SCRAPE_MEDIAN = 0.05
SCRAPE_MAX = 0.2
"""Seconds a ``/metrics`` scrape may take while a peer misbehaves: median, slowest."""
SCRAPE_MAX_MANY = 0.5
"""The slowest scrape while a dozen hostile targets fail at once (files read in worker
threads, commands run): 0.2 s was missed once at a load of 5 on 2 cores."""
PLATEAU_DEADLINE = 2.0
"""The deadline of a plateau's runs against peers: each fails within milliseconds,
and the long deadline only keeps a stall of a busy machine from making a timeout."""
LOG_LINE_MAX = 1024
"""Characters of the longest log line, formatted as JSON or logfmt."""
STANDARD_REASONS: dict[Behaviour, str] = {
    "silent": "timeout",
    "close": "protocol",
    "garbage": "protocol",
    "stream": "protocol",
    "slow": "timeout",
    "huge": "protocol",
    "auth": "auth",
}
"""The reason each ``tests.hostile`` behaviour is, by the issue's rules: accepted and
never answered is a timeout, accepted and then closed or nonsense is protocol."""
FILE_REASONS: dict[FileBehaviour, str] = {
    "huge": "protocol",
    "garbage": "protocol",
    "non-utf8": "protocol",
    "fifo": "config",
    "stream": "config",
    "unreadable": "auth",
    "not-a-file": "config",
    "loop": "config",
}
"""The reason each ``HostileFiles`` behaviour is where a kind reads a whole file: too
large or not text is protocol, not a regular file is config, refused is auth."""


# --- what /metrics says about a target ----------------------------------------------------


def runs_of(m: Series, kind: str, target: str) -> float:
    """The target's ``tradeops_probe_runs_total`` (0 before its first run)."""
    return value(m, "tradeops_probe_runs_total", kind=kind, target=target) or 0


def errors_of(m: Series, kind: str, target: str) -> dict[str, float]:
    """The target's non-zero ``tradeops_probe_errors_total`` counts by reason."""
    found = with_label(m, "tradeops_probe_errors_total", kind=kind, target=target)
    return {dict(labels)["reason"]: v for labels, v in found.items() if v}


def every_run_failed_with(m: Series, kind: str, target: str) -> str:
    """The one reason every run of the target so far failed with; fails when a run
    succeeded or failed otherwise."""
    errors, runs = errors_of(m, kind, target), runs_of(m, kind, target)
    assert len(errors) == 1 and sum(errors.values()) == runs, (errors, runs)
    return next(iter(errors))


def each_ran(kind: str, targets: Iterable[str], n: int) -> Callable[[Series], bool]:
    """A ``scrape_until`` check: every one of ``targets`` has run ``n`` times."""
    names = list(targets)
    return lambda m: all(runs_of(m, kind, t) >= n for t in names)


# --- run outcomes -------------------------------------------------------------------------


async def repeat(
    kind: ProbeKind[Any, Any], target: TargetBase, state: ProbeState, n: int
) -> list[RunOutcome]:
    """``n`` runs of the probe one after the other, each under the target's timeout."""
    return [await run_probe(kind, target, state, target.timeout_s) for _ in range(n)]


async def fresh_runs(
    kind: ProbeKind[TargetT, StateT], target: TargetT, n: int
) -> tuple[list[RunOutcome], StateT]:
    """``n`` runs on a new state for the target, closed afterwards (its budget and
    counters stay readable)."""
    state = kind.new_state(target)
    try:
        return await repeat(kind, target, state, n), state
    finally:
        await state.aclose()


class Outcome(Protocol):
    """A run's result as a suite keeps it (``RunOutcome`` or a kind's own)."""

    @property
    def reason(self) -> str | None: ...

    @property
    def error(self) -> object: ...


def same_reason(outcomes: Iterable[Outcome]) -> str | None:
    """The one reason every run gave (None: all succeeded); fails, naming each run's
    error, when the runs disagree."""
    runs = list(outcomes)
    reasons = {o.reason for o in runs}
    assert len(reasons) == 1, [(o.reason, str(o.error)) for o in runs]
    return reasons.pop()


def parse_target(text: str, kind: str, model: type[TargetT]) -> TargetT:
    """The first ``kind`` target of a config text, validated as the loader does."""
    target = cfg.parse(text, "cfg.yml").targets[kind][0]
    assert isinstance(target, model)
    return target


def target_yaml(kind: str, fields: Mapping[str, str], extra: str = "") -> str:
    """A config section of one target named ``hostile``: ``fields`` (YAML values) in
    order, then ``extra`` (lines indented for the target)."""
    lines = "".join(f"    {key}: {val}\n" for key, val in fields.items())
    return f"{kind}:\n  - name: hostile\n{lines}{extra}\n"


def targets_yaml(kind: str, rows: Mapping[str, str], common: str) -> str:
    """A config section of flow-style targets, ``{name: <name>, <fields>, <common>}``
    per row: the exporter of a suite's many hostile targets."""
    return f"{kind}:\n" + "".join(f"  - {{name: {n}, {f}, {common}}}\n" for n, f in rows.items())


# --- log lines ----------------------------------------------------------------------------


def warnings_for(records: Iterable[logging.LogRecord], kind: str, target: str) -> list[Any]:
    """The WARNING "probe failed" lines of one target."""
    return [
        r
        for r in records
        if r.levelno == logging.WARNING
        and r.getMessage() == "probe failed"
        and getattr(r, "fields", {}).get("kind") == kind
        and getattr(r, "fields", {}).get("target") == target
    ]


def warnings_in(records: Iterable[logging.LogRecord]) -> list[Any]:
    """Every line at WARNING or above; each carries its structured ``fields``."""
    found = [r for r in records if r.levelno >= logging.WARNING]
    assert all(hasattr(r, "fields") for r in found), [r.getMessage() for r in found]
    return found


def formatted(records: Iterable[logging.LogRecord]) -> Iterator[str]:
    """Each record as the exporter writes it, in JSON and in logfmt."""
    for record in records:
        yield JsonFormatter().format(record)
        yield LogfmtFormatter().format(record)


def longest_line(records: Iterable[logging.LogRecord]) -> int:
    """Characters of the longest formatted line (0 when there is none)."""
    return max((len(line) for line in formatted(records)), default=0)


def assert_not_logged(records: Iterable[logging.LogRecord], *secrets: str) -> None:
    """No secret in any message, structured field or formatted line."""
    for record in records:
        for line in (record.getMessage(), str(getattr(record, "fields", "")), *formatted([record])):
            for secret in secrets:
                assert secret not in line, (secret, line)


# --- timing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantiles:
    """Median, 99th percentile and maximum of some durations (seconds)."""

    median: float
    p99: float
    max: float

    @classmethod
    def of(cls, xs: Sequence[float]) -> Quantiles:
        """Of ``xs`` (at least one)."""
        ordered = sorted(xs)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return cls(statistics.median(ordered), p99, ordered[-1])

    def __str__(self) -> str:
        ms = (self.median * 1000, self.p99 * 1000, self.max * 1000)
        return "median {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms".format(*ms)


@dataclass(frozen=True)
class Scrapes:
    """What a run of ``/metrics`` scrapes took, and what the last one said."""

    latency: Quantiles
    count: int
    last: Series

    def assert_fast(self, slowest: float = SCRAPE_MAX) -> None:
        """Median under ``SCRAPE_MEDIAN``, the slowest under ``slowest``."""
        assert self.latency.median < SCRAPE_MEDIAN, f"/metrics: {self.latency}"
        assert self.latency.max < slowest, f"/metrics: {self.latency}"


async def sample_scrapes(
    run: Running, n: int = 20, seconds: float | None = None, pause: float = 0.0
) -> Scrapes:
    """Time ``n`` scrapes in a row, or as many as fit in ``seconds`` with ``pause``
    between them."""
    times: list[float] = []
    end = time.perf_counter() + (seconds or 0.0)
    while (len(times) < n) if seconds is None else (time.perf_counter() < end):
        start = time.perf_counter()
        last = await run.scrape()
        times.append(time.perf_counter() - start)
        if pause:
            await asyncio.sleep(pause)
    return Scrapes(Quantiles.of(times), len(times), last)


class LoopHolds:
    """A task that sleeps 1 ms in a loop and records how late it wakes: the longest
    time anything held the event loop. Start it inside the loop."""

    def __init__(self) -> None:
        self.holds: list[float] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            self.holds.append(time.perf_counter() - start - 0.001)

    async def stop(self) -> Quantiles:
        """Stop recording; the holds seen."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return Quantiles.of(self.holds or [0.0])


def rss_bytes() -> int:
    """The process's resident set now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssPeak(threading.Thread):
    """Samples the resident set every 5 ms from a thread: a loop busy parsing or
    buffering cannot hide the peak, and the process's max RSS may have been set by
    an earlier test."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.start_rss = rss_bytes()
        self.peak = self.start_rss
        self._done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def stop(self) -> int:
        """Stop sampling; the peak growth above the start, in bytes."""
        self._done.set()
        self.join()
        return self.peak - self.start_rss


# --- one hostile target in a running exporter ---------------------------------------------


async def check_one_episode(
    run: Running,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    behaviour: str,
    reason: str,
    withdrawn: str,
    runs: int = 5,
    target: str = "hostile",
) -> Any:
    """Call while the peer still misbehaves (after it goes, runs are ``refused``).

    After ``runs`` runs every one failed with ``reason`` and no other, ``up`` is 0,
    the data family ``withdrawn`` has no series, scrapes are fast, and one WARNING
    line of at most ``LOG_LINE_MAX`` characters names ``reason``; returns that line.
    Records the cell of the fault matrix."""
    m = await scrape_until(run, lambda m: runs_of(m, kind, target) >= runs, timeout=15)
    record_fault(kind, behaviour, "/".join(sorted(errors_of(m, kind, target))))
    assert every_run_failed_with(m, kind, target) == reason
    assert value(m, "tradeops_up", kind=kind, target=target) == 0
    assert with_label(m, withdrawn) == {}
    (await sample_scrapes(run)).assert_fast()
    failures = warnings_for(caplog.records, kind, target)
    assert len(failures) == 1, [r.fields for r in failures]
    assert failures[0].fields["reason"] == reason
    assert longest_line(failures) < LOG_LINE_MAX
    return failures[0]


async def check_one_warning_each(
    run: Running, kind: str, expected: Mapping[str, str], records: list[logging.LogRecord]
) -> tuple[Scrapes, int]:
    """Scrape ``run`` after many failed runs of several hostile targets: each target
    in ``expected`` is down and counted its reason at least 4 times, has exactly one
    WARNING line (no other target has any), scrapes are fast (``SCRAPE_MAX_MANY``)
    and no line is longer than ``LOG_LINE_MAX``; returns the scrapes and the longest
    line."""
    warnings = warnings_in(records)
    scrapes = await sample_scrapes(run)
    m = scrapes.last
    for name, reason in expected.items():
        assert value(m, "tradeops_up", kind=kind, target=name) == 0, name
        assert errors_of(m, kind, name).get(reason, 0) >= 4, (name, errors_of(m, kind, name))
    assert sorted(r.fields["target"] for r in warnings) == sorted(expected)
    longest = longest_line(warnings)
    assert longest < LOG_LINE_MAX, longest
    scrapes.assert_fast(SCRAPE_MAX_MANY)
    return scrapes, longest


async def check_episodes(
    run: Running, kind: str, expected: Mapping[str, str], records: list[logging.LogRecord]
) -> tuple[Scrapes, int]:
    """As ``check_one_warning_each``, for kinds whose runs may overrun on a loaded
    machine (files read in worker threads, commands): ``healthy`` is up, and a run
    that overran its deadline is a real second episode (``timeout``, then the
    reason again), so each extra line needs a timeout counted, no reason is logged
    twice in a row, and no other reason appears."""
    warnings = warnings_in(records)
    scrapes = await sample_scrapes(run)
    m = scrapes.last
    healthy = errors_of(m, kind, "healthy")
    assert set(healthy) <= {"timeout"} and healthy.get("timeout", 0) <= 1, healthy
    episodes: dict[str, list[str]] = {}
    for r in warnings:
        episodes.setdefault(r.fields["target"], []).append(r.fields["reason"])
    assert sorted(episodes) == sorted(expected), episodes
    for name, reason in expected.items():
        seen, counted = episodes[name], errors_of(m, kind, name)
        assert set(seen) <= {reason, "timeout"}, (name, seen)
        assert all(a != b for a, b in pairwise(seen)), (name, seen)
        assert len(seen) <= 1 + 2 * counted.get("timeout", 0), (name, seen)
        assert counted.get(reason, 0) >= 4, (name, reason, counted)
    longest = longest_line(warnings)
    assert longest < LOG_LINE_MAX, longest
    scrapes.assert_fast(SCRAPE_MAX_MANY)
    return scrapes, longest


# --- what the process holds besides ``Usage`` ---------------------------------------------


def children() -> list[tuple[int, str]]:
    """(pid, state) of this process's child processes."""
    me, out = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == me:
            out.append((int(entry), fields[0]))
    return out


def io_threads() -> int:
    """Worker threads of the file kinds (``BlockingIO``)."""
    return sum(t.name == "backup-io" for t in threading.enumerate())


# --- the plateau --------------------------------------------------------------------------


async def _settled(seconds: float) -> Usage:
    """Usage once a peer's handlers and a run's workers have ended, garbage collected."""
    await asyncio.sleep(seconds)
    gc.collect()
    return Usage.now()


@dataclass(frozen=True)
class Plateau:
    """Usage before, half-way through and after the measured runs of ``plateau``."""

    before: Usage
    half: Usage
    after: Usage
    cycles: int
    elapsed: float
    """Seconds the measured runs took (the measuring between them not counted)."""
    reasons: Counter[str | None] = field(repr=False)
    """How many runs, the warm-up's too, gave each reason (None: succeeded)."""
    errors: dict[str | None, str] = field(repr=False)
    """The first error seen for each reason. (Runs' outcomes are not kept: their
    exceptions hold frames, and a thousand of them are megabytes.)"""

    def same_reason(self) -> str | None:
        """The one reason every run gave; fails naming each reason's first error."""
        assert len(self.reasons) == 1, (self.reasons, self.errors)
        return next(iter(self.reasons))

    def assert_flat(self) -> None:
        """The margins, the same for every kind: ``FD_MARGIN``, ``TASK_MARGIN``, no
        thread more, ``RSS_MARGIN`` over the runs and ``RSS_HALF_MARGIN`` over their
        second half."""
        b, h, a = self.before, self.half, self.after
        assert a.fds <= b.fds + FD_MARGIN, self
        assert a.tasks <= b.tasks + TASK_MARGIN, self
        assert a.threads == b.threads, self
        assert a.rss_bytes - b.rss_bytes < RSS_MARGIN, self
        assert a.rss_bytes - h.rss_bytes < RSS_HALF_MARGIN, self

    def __str__(self) -> str:
        b, h, a = self.before, self.half, self.after
        return (
            f"{self.cycles} runs, {self.elapsed / self.cycles * 1000:.2f} ms/run;"
            f" fds {b.fds}->{a.fds}, tasks {b.tasks}->{a.tasks},"
            f" threads {b.threads}->{a.threads},"
            f" RSS {b.rss_bytes / MIB:.0f}->{h.rss_bytes / MIB:.0f}->{a.rss_bytes / MIB:.0f} MiB"
        )


async def plateau(
    run_once: Callable[[], Awaitable[Outcome]],
    cycles: int = 1000,
    warmup: int = 100,
    settle: float = 0.05,
) -> Plateau:
    """Usage around ``cycles`` calls of ``run_once`` after ``warmup`` (caches, pools,
    allocator arenas), each measured ``settle`` seconds after the last run."""
    reasons: Counter[str | None] = Counter()
    errors: dict[str | None, str] = {}

    async def runs(n: int) -> None:
        for _ in range(n):
            outcome = await run_once()
            reasons[outcome.reason] += 1
            errors.setdefault(outcome.reason, str(outcome.error))

    await runs(warmup)
    points: list[Usage] = []
    elapsed = 0.0
    for n in (cycles // 2, cycles - cycles // 2):
        points.append(await _settled(settle))
        start = time.perf_counter()
        await runs(n)
        elapsed += time.perf_counter() - start
    points.append(await _settled(settle))
    before, half, after = points
    return Plateau(before, half, after, cycles, elapsed, reasons, errors)


async def fresh_plateau(
    kind: ProbeKind[TargetT, Any],
    target: TargetT,
    cycles: int = 1000,
    warmup: int = 100,
    settle: float = 0.05,
) -> Plateau:
    """``plateau`` of runs under ``PLATEAU_DEADLINE`` on a new state for the target,
    closed afterwards."""
    state = kind.new_state(target)
    try:
        return await plateau(runner(kind, target, state), cycles, warmup, settle)
    finally:
        await state.aclose()


def runner(
    kind: ProbeKind[Any, Any],
    target: TargetBase,
    state: ProbeState,
    deadline: float = PLATEAU_DEADLINE,
) -> Callable[[], Awaitable[RunOutcome]]:
    """A ``run_once`` for ``plateau``: one run of the probe under ``deadline``."""
    return lambda: run_probe(kind, target, state, deadline)


def rotate(
    kind: ProbeKind[Any, Any], runs: Sequence[tuple[TargetBase, ProbeState]]
) -> Callable[[], Awaitable[RunOutcome]]:
    """A ``run_once`` for ``plateau`` that probes each (target, state) in turn."""
    turns = cycle(runs)

    async def run_once() -> RunOutcome:
        target, state = next(turns)
        return await run_probe(kind, target, state, target.timeout_s)

    return run_once
