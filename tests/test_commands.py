"""Commands under a deadline (exporter/commands.py): reaped with their process group
when cancelled, and one reason for each way a command fails."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.budget import ReadBudget
from exporter.commands import run_command
from exporter.probe import ProbeError

from .helpers import eventually


async def test_cancelled_command_is_reaped_and_the_cancel_propagates(tmp_path: Path) -> None:
    """Cancelling a run (the scheduler's deadline, or shutdown) mid-command must stop
    the process group and still cancel the caller."""
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
    with pytest.raises(ProbeError) as err:
        await run_command(argv, 10, 1024)
    assert err.value.reason == reason


async def test_a_command_over_its_time_is_stopped_with_a_timeout() -> None:
    with pytest.raises(ProbeError) as err:
        await run_command(["sleep", "30"], 0.2, 1024)
    assert (err.value.reason, str(err.value)) == ("timeout", "sleep did not finish within 0.2s")


async def test_stdout_and_stderr_are_charged_to_the_budget() -> None:
    """Stderr is kept only as a tail but still counts: a flood there is a protocol error."""
    budget = ReadBudget(64 * 1024)
    with pytest.raises(ProbeError) as err:
        await run_command(["sh", "-c", "exec yes >&2"], 10, 1024, budget)
    assert err.value.reason == "protocol"
    assert str(err.value).startswith("command stderr: more than the response budget of 64KiB")
    budget.reset()
    assert await run_command(["sh", "-c", "echo hello; echo noise >&2"], 10, 1024, budget) == (
        b"hello\n"
    )
    assert budget.used == len(b"hello\n") + len(b"noise\n")
