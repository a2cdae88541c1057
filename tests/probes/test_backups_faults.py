"""The backups kind against hostile inputs: files that are huge, garbage, FIFOs,
unreadable, directories or link loops where a file is expected, and commands that
hang, print without end, print garbage or fail loudly. Each is one stable reason,
one log line, a fast /metrics and no growth of threads, processes or memory.

The files are real (a sparse file, a FIFO, a write-only kernel file); the commands
are small shell scripts standing in for a broken pgbackrest, which cannot be made
to misbehave on cue. ``HostileFiles`` is shared with the fix_store and drills suites.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import pytest

from exporter import config as cfg
from exporter.probes.backups import KIND, BackupState, BackupTarget
from exporter.scheduler import RunOutcome, run_probe

from ..fixtures_backups import backup_dir
from ..helpers import Running, Series, eventually, report, scrape_until, value
from ..hostile import Usage, record_fault

__all__ = ["backup_dir"]

Factory = Callable[..., Any]
FileBehaviour = Literal[
    "huge", "garbage", "non-utf8", "fifo", "stream", "unreadable", "not-a-file", "loop"
]
FILE_BEHAVIOURS: tuple[FileBehaviour, ...] = (
    "huge", "garbage", "non-utf8", "fifo", "stream", "unreadable", "not-a-file", "loop",
)  # fmt: skip
WRITE_ONLY = Path("/proc/sys/vm/compact_memory")
"""A kernel file of mode 0200: reading it is refused (EACCES) even to root."""
HUGE_BYTES = 10 << 30


def can_refuse_reads() -> bool:
    """Whether an unreadable file can be made here (root reads any chmod 000 file)."""
    return os.geteuid() != 0 or WRITE_ONLY.exists()


class HostileFiles:
    """Puts a hostile thing where a file is expected; stops FIFO writers afterwards.

    ``huge`` is a sparse 10 GB file, ``garbage`` 4 KiB of random bytes, ``non-utf8``
    JSON-looking bytes that are not UTF-8, ``fifo`` a FIFO nobody writes to (open()
    blocks), ``stream`` a FIFO a writer fills without end, ``unreadable`` a file the
    exporter's user may not read, ``not-a-file`` a directory (``socket``: a UNIX
    socket), ``loop`` a symbolic link to itself.
    """

    def __init__(self) -> None:
        self.writers: list[subprocess.Popen[bytes]] = []
        self.sockets: list[socket.socket] = []

    def make(self, path: Path, behaviour: FileBehaviour, not_a_file: str = "directory") -> Path:
        """Replace whatever is at ``path`` with ``behaviour``."""
        self._clear(path)
        if behaviour == "huge":
            with path.open("wb") as f:
                f.truncate(HUGE_BYTES)
        elif behaviour == "garbage":
            path.write_bytes(random.Random(7).randbytes(4096))
        elif behaviour == "non-utf8":
            path.write_bytes(b'{"result": "ok\xff\xfe", "name": "\xc3\x28"}\n')
        elif behaviour in ("fifo", "stream"):
            os.mkfifo(path)
            if behaviour == "stream":  # <> opens without waiting for a reader; the
                # time limit ends a writer whose test was killed before its teardown
                script = f'exec 3<>"{path}"; exec timeout 300 cat /dev/zero >&3'
                writer = subprocess.Popen(["sh", "-c", script], start_new_session=True)
                self.writers.append(writer)
        elif behaviour == "unreadable":
            self._unreadable(path)
        elif behaviour == "not-a-file" and not_a_file == "socket":
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(str(path))
            self.sockets.append(sock)
        elif behaviour == "not-a-file":
            path.mkdir()
        else:
            os.symlink(path.name, path)
        return path

    @staticmethod
    def _unreadable(path: Path) -> None:
        if os.geteuid() != 0:
            path.write_text("{}")
            path.chmod(0)
        elif WRITE_ONLY.exists():
            os.symlink(WRITE_ONLY, path)
        else:
            pytest.skip("no file here refuses reads to root")

    @staticmethod
    def _clear(path: Path) -> None:
        if path.is_symlink() or path.is_file() or path.is_fifo() or path.is_socket():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)

    def close(self) -> None:
        """Stop the writers and close the sockets."""
        for writer in self.writers:
            os.killpg(writer.pid, signal.SIGKILL)  # timeout and its cat
            writer.wait(5)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def hostile_files() -> Iterator[HostileFiles]:
    """A ``HostileFiles`` cleaned up after the test."""
    files = HostileFiles()
    yield files
    files.close()


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


async def check_episodes(
    run: Running, kind: str, expected: dict[str, str], records: list[logging.LogRecord]
) -> tuple[list[float], int]:
    """Scrape ``run`` after many failed runs: every target in ``expected`` is down with
    its reason, ``healthy`` up, one WARNING per target and episode; returns the scrape
    times and the longest log line.

    A run that overruns its deadline on a loaded machine is a real, second episode
    (``timeout``, then the reason again): each needs a timeout counted, no reason
    is logged twice in a row, and no other reason appears."""
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert all(hasattr(r, "fields") for r in warnings), [r.getMessage() for r in warnings]
    took = []
    for _ in range(20):
        start = time.perf_counter()
        m = await run.scrape()
        took.append(time.perf_counter() - start)
    errors = "tradeops_probe_errors_total"

    def count(target: str, reason: str) -> float:
        return value(m, errors, kind=kind, target=target, reason=reason) or 0

    healthy_failures = sum(count("healthy", r) for r in ("config", "protocol", "auth", "other"))
    assert healthy_failures == 0 and count("healthy", "timeout") <= 1
    episodes: dict[str, list[str]] = {}
    for r in warnings:
        episodes.setdefault(r.fields["target"], []).append(r.fields["reason"])  # type: ignore[attr-defined]
    assert sorted(episodes) == sorted(expected), episodes
    for name, reason in expected.items():
        seen = episodes[name]
        assert set(seen) <= {reason, "timeout"}, (name, seen)
        assert all(a != b for a, b in pairwise(seen)), (name, seen)
        assert len(seen) <= 1 + 2 * count(name, "timeout"), (name, seen)
        assert count(name, reason) >= 4, (name, reason, count(name, reason))
    lines = [len(r.getMessage()) + len(str(r.fields)) for r in warnings]  # type: ignore[attr-defined]
    return took, max(lines)


# --- the backups kind ----------------------------------------------------------

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


def _target(name: str, source: str, extra: str = "", interval: str = "1s") -> BackupTarget:
    text = f"""
backups:
  - name: {name}
    interval: {interval}
    timeout: 800ms
    source: {source}
{extra}
"""
    target = cfg.parse(text, "cfg.yml").targets["backups"][0]
    assert isinstance(target, BackupTarget)
    return target


def _output_source(path: Path) -> str:
    return f'{{type: pgbackrest, stanza: main, output_file: "{path}"}}'


def _command_source(directory: Path, behaviour: str) -> str:
    script = directory / f"{behaviour}.sh"
    script.write_text(f"#!/bin/sh\n{COMMANDS[behaviour][0]}\n")
    script.chmod(0o755)
    hangs = behaviour in ("hung-command", "leaves-child")  # the rest: the run's deadline
    timeout = ", command_timeout: 200ms" if hangs else ""
    return f'{{type: pgbackrest, stanza: main, command: ["{script}"]{timeout}}}'


async def _runs(target: BackupTarget, state: BackupState, n: int) -> list[RunOutcome]:
    return [await run_probe(KIND, target, state, target.timeout_s) for _ in range(n)]


@pytest.mark.parametrize("behaviour", FILE_BEHAVIOURS)
async def test_each_hostile_output_file_has_one_stable_reason(
    behaviour: FileBehaviour, tmp_path: Path, hostile_files: HostileFiles
) -> None:
    saved = hostile_files.make(tmp_path / "info.json", behaviour)
    target = _target("set", _output_source(saved))
    state = BackupState(target)
    before = io_threads()
    outs = await _runs(target, state, 5)
    assert {o.reason for o in outs} == {FILE_REASONS[behaviour]}, [str(o.error) for o in outs]
    assert max(o.duration for o in outs) < 0.5  # refused, never waited for
    assert state.budget.used < 8192  # the huge file and the FIFOs were not read
    await asyncio.sleep(0.05)  # a run's worker ends just after handing its result
    assert io_threads() == before
    record_fault("backups", behaviour, FILE_REASONS[behaviour])


@pytest.mark.parametrize("behaviour", list(COMMANDS))
async def test_each_hostile_command_has_one_stable_reason(behaviour: str, tmp_path: Path) -> None:
    target = _target("set", _command_source(tmp_path, behaviour), "    response_budget: 64KiB")
    state = BackupState(target)
    before = children()
    outs = await _runs(target, state, 3)
    reason = COMMANDS[behaviour][1]
    assert {o.reason for o in outs} == {reason}, [str(o.error) for o in outs]
    assert max(o.duration for o in outs) < 0.75  # command_timeout 200ms + TERM grace
    assert children() == before  # killed and reaped, whatever it left behind
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
    out = (await _runs(target, BackupState(target), 1))[0]
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
    small = _target("set", source, "    response_budget: 64KiB")
    outs = await _runs(small, BackupState(small), 3)
    assert {o.reason for o in outs} == {"protocol"}
    assert "response budget of 64KiB" in str(outs[0].error)
    large = _target("set", source, "    response_budget: 1MiB")
    (ok,) = await _runs(large, BackupState(large), 1)
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
    cases = [b for b in FILE_BEHAVIOURS if b != "unreadable" or can_refuse_reads()]
    for behaviour in cases:
        hostile_files.make(backup_dir / f"{behaviour}.manifest.json", behaviour)
    target = _target("set", f'{{type: directory, path: "{backup_dir}"}}')
    state = BackupState(target)
    outs = await _runs(target, state, 3)
    assert all(o.ok for o in outs), [o.error for o in outs]
    invalid = [
        s.value  # type: ignore[union-attr]
        for s in outs[-1].samples
        if s.family.name.endswith("invalid_manifests")
    ]
    # huge, garbage, non-utf8 and unreadable; the FIFOs, the directory and the loop are skipped
    assert invalid == [3 + ("unreadable" in cases)]
    assert state.budget.used < 64 * 1024


def _exporter_config(targets: dict[str, str]) -> str:
    rows = "".join(
        f"  - {{name: {name}, interval: 500ms, timeout: 450ms, response_budget: 64KiB,"
        f" source: {source}}}\n"
        for name, source in targets.items()
    )
    return "backups:\n" + rows


async def test_many_failed_runs_log_once_and_metrics_stay_fast(
    tmp_path: Path,
    hostile_files: HostileFiles,
    exporter_factory: Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter")
    expected: dict[str, str] = {}
    sources: dict[str, str] = {}
    for behaviour in FILE_BEHAVIOURS:
        if behaviour == "unreadable" and not can_refuse_reads():
            continue
        path = hostile_files.make(tmp_path / f"{behaviour}.json", behaviour)
        sources[behaviour] = _output_source(path)
        expected[behaviour] = FILE_REASONS[behaviour]
    for command, (_, reason) in COMMANDS.items():
        sources[command] = _command_source(tmp_path, command)
        expected[command] = reason
    healthy = tmp_path / "healthy.json"
    healthy.write_text(INFO_OK)
    sources["healthy"] = _output_source(healthy)
    run: Running = await exporter_factory(_exporter_config(sources))

    def five_runs_each(m: Series) -> bool:
        runs = "tradeops_probe_runs_total"
        return all((value(m, runs, kind="backups", target=t) or 0) >= 6 for t in sources)

    await scrape_until(run, five_runs_each, timeout=30)
    took, longest = await check_episodes(run, "backups", expected, caplog.records)
    assert longest < 1024, longest
    assert max(took) < 0.5, f"/metrics took {max(took):.3f}s"
    report(
        f"backups faults: /metrics median {statistics.median(took) * 1000:.1f} ms, "
        f"max {max(took) * 1000:.1f} ms with {len(expected)} hostile targets"
    )


async def test_usage_plateaus_over_a_thousand_runs(
    tmp_path: Path, hostile_files: HostileFiles
) -> None:
    cases = [b for b in FILE_BEHAVIOURS if b != "unreadable" or can_refuse_reads()]
    states = []
    for behaviour in cases:
        path = hostile_files.make(tmp_path / f"{behaviour}.json", behaviour)
        target = _target(behaviour, _output_source(path))
        states.append((target, BackupState(target)))
    commands = []
    for command in ("garbage-output", "failing-command"):
        target = _target(command, _command_source(tmp_path, command))
        commands.append((target, BackupState(target)))

    async def cycle(n: int, runs: list[tuple[BackupTarget, BackupState]]) -> set[str | None]:
        seen: set[str | None] = set()
        for i in range(n):
            target, state = runs[i % len(runs)]
            seen.add((await run_probe(KIND, target, state, target.timeout_s)).reason)
        return seen

    await cycle(100, states)  # warm up: caches, allocator arenas
    await cycle(10, commands)
    await asyncio.sleep(0.1)  # the child watcher's threads end after their wait
    before, kids = Usage.now(), children()
    start = time.perf_counter()
    reasons = await cycle(1000, states)
    files_took = time.perf_counter() - start
    start = time.perf_counter()
    reasons |= await cycle(100, commands)
    commands_took = time.perf_counter() - start
    await asyncio.sleep(0.1)  # the child watcher's threads end after their wait
    after = Usage.now()
    assert reasons - {"timeout"} == {"protocol", "config", "auth", "other"} - (
        set() if can_refuse_reads() else {"auth"}
    )
    assert children() == kids
    assert after.fds <= before.fds + 2, (before, after)
    assert after.tasks <= before.tasks + 2, (before, after)
    assert after.threads <= before.threads, (before, after)
    assert after.rss_bytes - before.rss_bytes < 16 << 20, (before, after)
    report(
        f"backups hostile files x1000: {files_took:.2f} ms/run; commands x100: "
        f"{commands_took * 10:.2f} ms/run; fds {before.fds}->{after.fds}, tasks "
        f"{before.tasks}->{after.tasks}, threads {before.threads}->{after.threads}, "
        f"RSS {before.rss_bytes >> 20}->{after.rss_bytes >> 20} MiB"
    )
