"""Bounded file I/O (exporter/file_io.py): one worker thread per state that fails fast
while blocked, reads that refuse what is not a regular file or is over a limit or
the budget, listings that fail rather than come back empty, and one reason each."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from pathlib import Path

import pytest

from exporter.budget import ReadBudget
from exporter.file_io import (
    BlockingIO,
    charge,
    check_regular,
    file_error,
    file_identity,
    list_files,
    read_limited,
    room,
)
from exporter.probe import ProbeError


def _workers() -> int:
    return sum(t.name == "backup-io" for t in threading.enumerate())


async def test_a_call_runs_on_a_worker_and_passes_its_outcome_back() -> None:
    io = BlockingIO()
    assert await io.call(threading.current_thread) is not threading.current_thread()
    with pytest.raises(ZeroDivisionError):
        await io.call(divmod, 1, 0)
    assert not io.blocked


async def test_a_blocked_call_fails_later_ones_at_once_with_no_second_thread() -> None:
    io = BlockingIO(busy="the volume is still blocked")
    release = threading.Event()
    closed: list[str] = []
    before = _workers()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(io.call(release.wait, 30), 0.1)  # the run's deadline
    stuck = io.blocked
    assert stuck
    io.after(lambda: closed.append("closed"))
    assert closed == []  # waits for the stuck call
    with pytest.raises(ProbeError) as err:
        await io.call(time.sleep, 0)
    assert (err.value.reason, str(err.value)) == ("timeout", "the volume is still blocked")
    assert _workers() == before + 1  # refused without a thread
    release.set()
    for _ in range(100):
        if closed:
            break
        await asyncio.sleep(0.01)
    assert closed == ["closed"] and not io.blocked
    assert await io.call(len, "ok") == 2
    io.after(lambda: closed.append("now"))
    assert closed == ["closed", "now"]


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [
        (errno.EACCES, "auth", "f: permission denied to the exporter's user"),
        (errno.EPERM, "auth", "f: permission denied to the exporter's user"),
        (errno.ELOOP, "config", "f: Too many levels of symbolic links"),
        (errno.ENOTDIR, "config", "f: Not a directory"),
        (errno.EIO, "other", "f: Input/output error"),
    ],
)
def test_file_errors_have_one_reason_each(code: int, reason: str, message: str) -> None:
    err = file_error(OSError(code, os.strerror(code)), "f")
    assert (err.reason, str(err)) == (reason, message)


def test_what_is_not_a_regular_file_is_a_config_error(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO"), (tmp_path, "a directory")):
        with pytest.raises(ProbeError) as err:
            check_regular(os.stat(path), "it")
        assert (err.value.reason, str(err.value)) == ("config", f"it is {kind}, not a regular file")
    check_regular(os.stat(__file__), "this file")


def test_charge_and_room_keep_the_budget() -> None:
    charge(None, 1 << 40, "anything")  # no budget: nothing to keep
    assert room(None, 100) == 100
    budget = ReadBudget(1000)
    charge(budget, 600, "a")
    assert (room(budget, 100), room(budget, 10_000)) == (100, 400)
    with pytest.raises(ProbeError) as err:
        charge(budget, 401, "b")
    assert err.value.reason == "protocol"
    assert str(err.value) == (
        "b: more than the response budget of 1000B read in one run (response_budget)"
    )
    assert room(budget, 100) == 0


def test_read_limited_reads_a_file_within_its_limit_and_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "info.json"
    path.write_bytes(b"x" * 100)
    budget = ReadBudget(1000)
    assert read_limited(path, 100, budget) == b"x" * 100
    assert budget.used == 100
    with pytest.raises(ProbeError, match=r"^info.json is larger than 99 bytes$") as err:
        read_limited(path, 99, budget)
    assert err.value.reason == "protocol"
    assert budget.used == 100  # refused by its size, not read
    small = ReadBudget(150)
    small.charge(100)
    with pytest.raises(ProbeError, match="more than the response budget of 150B"):
        read_limited(path, 1000, small)


def test_read_limited_refuses_a_fifo_unopened_and_passes_a_missing_file_on(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "info.json"
    os.mkfifo(fifo)  # no writer: opening it for reading would block
    with pytest.raises(ProbeError) as err:
        read_limited(fifo, 100)
    assert (err.value.reason, str(err.value)) == (
        "config",
        "info.json is a FIFO, not a regular file",
    )
    with pytest.raises(FileNotFoundError):
        read_limited(tmp_path / "gone.json", 100)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(ProbeError) as err:
        read_limited(tmp_path / "loop", 100)
    assert err.value.reason == "config"


def test_list_files_keeps_the_newest_regular_files(tmp_path: Path) -> None:
    now = time.time()
    for i, name in enumerate(("old.json", "mid.json", "new.json")):
        (tmp_path / name).write_text(name)
        os.utime(tmp_path / name, (now - 300 + 100 * i, now - 300 + 100 * i))
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere")
    (tmp_path / "other.txt").write_text("not matched")
    found = list_files(tmp_path, "*.json", 2)
    assert [p.name for p, _ in found] == ["new.json", "mid.json"]
    assert found[0][1] == file_identity(os.stat(tmp_path / "new.json"))


def test_list_files_fails_for_a_missing_or_wrong_directory(tmp_path: Path) -> None:
    with pytest.raises(ProbeError) as err:
        list_files(tmp_path / "not-mounted", "*", 10)
    assert err.value.reason == "other"
    assert str(err.value) == f"{tmp_path / 'not-mounted'} does not exist (not mounted?)"
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ProbeError) as err:
        list_files(tmp_path / "fifo", "*", 10)
    assert (err.value.reason, str(err.value)) == (
        "config",
        f"{tmp_path / 'fifo'} is a FIFO, not a directory",
    )


def test_a_file_identity_changes_with_its_content(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"one")
    first = file_identity(os.stat(path))
    path.write_bytes(b"other")
    assert file_identity(os.stat(path)) != first
