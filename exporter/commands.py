"""Subprocesses under a deadline, for the kinds that run a command (backups' pgBackRest).

A command runs in its own session with its output bounded and charged to the
run's response budget. On timeout, cancellation or oversized output its whole
process group is stopped (SIGTERM, then SIGKILL) and reaped before the caller
sees the outcome, so no child outlives the run. How a command fails: ``timeout``
when it does not finish in time, ``protocol`` when it prints more than allowed,
``other`` when it exits non-zero (with stderr's last line), ``config`` when it
cannot be found or run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from .budget import ReadBudget
from .file_io import charge, consume_outcome
from .probe import ProbeError

_STDERR_KEEP = 2000
_STDERR_SHOWN = 300
_TERM_GRACE = 0.5


async def run_command(
    argv: list[str], timeout: float, max_output: int, budget: ReadBudget | None = None
) -> bytes:
    """Run ``argv`` and return its stdout.

    The process runs in its own session; on timeout, cancellation or oversized
    output the whole process group is terminated (then killed) and reaped
    before this returns, so no child outlives the run. Both streams are read
    at once and charged to ``budget``; stdout may hold at most ``max_output``
    bytes. A non-zero exit is ProbeError("other") with stderr's last line.
    """
    proc = await _start(argv)
    try:
        async with asyncio.timeout(timeout):
            out, err = await _communicate(proc, max_output, budget)
            rc = await proc.wait()
    except TimeoutError:
        raise ProbeError("timeout", f"{argv[0]} did not finish within {timeout:g}s") from None
    finally:
        try:
            await _reap(proc)
        finally:
            _close_pipes(proc)  # also when a cancel is passed on
    if rc != 0:
        raise ProbeError("other", f"{argv[0]} exited with status {rc}: {_last_line(err)}")
    return out


async def _start(argv: list[str]) -> asyncio.subprocess.Process:
    """``argv`` started in a session of its own, its stdout and stderr piped."""
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ProbeError("config", f"command not found: {argv[0]}") from None
    except PermissionError:
        raise ProbeError("config", f"command not executable: {argv[0]}") from None


async def _communicate(
    proc: asyncio.subprocess.Process, max_output: int, budget: ReadBudget | None
) -> tuple[bytes, bytes]:
    """Stdout and the tail of stderr, read together: the first failure ends both."""
    tasks = (
        asyncio.ensure_future(_read_bounded(proc.stdout, max_output, budget)),
        asyncio.ensure_future(_read_tail(proc.stderr, _STDERR_KEEP, budget)),
    )
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            failure = task.exception() if task.done() else None
            if failure is not None:
                raise failure
        return tasks[0].result(), tasks[1].result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)  # never leave one pending


def _last_line(err: bytes) -> str:
    lines = err.decode(errors="replace").strip().splitlines()
    last = lines[-1].strip() if lines else "(no output on stderr)"
    return last if len(last) <= _STDERR_SHOWN else last[:_STDERR_SHOWN] + "..."


async def _read_bounded(
    stream: asyncio.StreamReader | None, limit: int, budget: ReadBudget | None
) -> bytes:
    assert stream is not None
    buf = bytearray()
    while chunk := await stream.read(65536):
        buf += chunk
        if len(buf) > limit:
            raise ProbeError("protocol", f"command output exceeds {limit} bytes")
        charge(budget, len(chunk), "command output")
    return bytes(buf)


async def _read_tail(
    stream: asyncio.StreamReader | None, keep: int, budget: ReadBudget | None
) -> bytes:
    assert stream is not None
    buf = b""
    while chunk := await stream.read(65536):
        buf = (buf + chunk)[-keep:]
        charge(budget, len(chunk), "command stderr")
    return buf


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Stop the process group if still running (SIGTERM, then SIGKILL) and reap it.

    SIGTERM first lets a ``sudo``/``runuser`` prefix relay the signal to a
    child we may not be allowed to signal ourselves. A cancellation arriving
    meanwhile skips the grace period, but the process is still killed and
    reaped before the cancellation is passed on.
    """
    cancelled = False
    for sig, grace in ((signal.SIGTERM, _TERM_GRACE), (signal.SIGKILL, None)):
        if proc.returncode is not None and not _group_alive(proc.pid):
            break  # a child left behind (holding the pipes) is stopped all the same
        # the group holds the process itself (its own session); not proc.send_signal,
        # whose poll() reaps the child behind the child watcher's back
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        if cancelled:
            continue
        waiter = asyncio.ensure_future(asyncio.wait_for(proc.wait(), grace))
        waiter.add_done_callback(consume_outcome)  # its timeout, should a cancel leave it alone
        try:
            await asyncio.shield(waiter)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            cancelled = True
    while proc.returncode is None:
        try:
            await asyncio.shield(proc.wait())
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


def _close_pipes(proc: asyncio.subprocess.Process) -> None:
    """Close the pipes of a reaped process whose output was not read to its end (a
    timeout, an overrun): else they stay open until garbage collection."""
    transport = getattr(proc, "_transport", None)  # Process exposes no close()
    if transport is not None:
        transport.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
