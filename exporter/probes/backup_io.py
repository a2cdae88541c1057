"""Bounded I/O for the backup probe: subprocesses that are killed on timeout,
blocking file work on one worker thread, and checksums resumed across runs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..probe import ProbeError

R = TypeVar("R")

_READ_CHUNK = 1 << 20
_STDERR_KEEP = 2000
_TERM_GRACE = 0.5


async def run_command(argv: list[str], timeout: float, max_output: int) -> bytes:
    """Run ``argv`` and return its stdout.

    The process runs in its own session; on timeout, cancellation or oversized
    output the whole process group is terminated (then killed) and reaped
    before this returns, so no child outlives the run. A non-zero exit is ProbeError("other").
    """
    try:
        proc = await asyncio.create_subprocess_exec(
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
    try:
        async with asyncio.timeout(timeout):
            err_task = asyncio.ensure_future(_read_tail(proc.stderr, _STDERR_KEEP))
            try:
                out = await _read_bounded(proc.stdout, max_output)
                err = await err_task
            finally:
                err_task.cancel()
                await asyncio.wait([err_task])  # never leave it pending
            rc = await proc.wait()
    except TimeoutError:
        raise ProbeError("timeout", f"{argv[0]} did not finish within {timeout:g}s") from None
    finally:
        await _reap(proc)
    if rc != 0:
        tail = err.decode(errors="replace").strip()
        raise ProbeError("other", f"{argv[0]} exited with status {rc}: {tail}")
    return out


async def _read_bounded(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    assert stream is not None
    buf = bytearray()
    while chunk := await stream.read(65536):
        buf += chunk
        if len(buf) > limit:
            raise ProbeError("protocol", f"command output exceeds {limit} bytes")
    return bytes(buf)


async def _read_tail(stream: asyncio.StreamReader | None, keep: int) -> bytes:
    assert stream is not None
    buf = b""
    while chunk := await stream.read(65536):
        buf = (buf + chunk)[-keep:]
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
        if proc.returncode is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        if cancelled:
            continue
        try:
            await asyncio.shield(asyncio.wait_for(proc.wait(), grace))
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


class BlockingIO:
    """Runs blocking file work on a daemon thread, one call at a time.

    A thread stuck in the kernel (a hung network filesystem) cannot be
    cancelled; instead of piling up threads, later calls fail with a timeout
    reason until it returns. Daemon threads cannot hold up the exporter's exit.
    """

    def __init__(self) -> None:
        self._busy: asyncio.Future[Any] | None = None

    async def call(self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` on a worker; a cancelled caller leaves it to finish alone."""
        if self._busy is not None and not self._busy.done():
            raise ProbeError("timeout", "a previous file operation is still blocked")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        fut.add_done_callback(_consume)

        def work() -> None:
            try:
                result: Any = fn(*args)
                error: BaseException | None = None
            except BaseException as exc:
                result, error = None, exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, fut, result, error)

        threading.Thread(target=work, name="backup-io", daemon=True).start()
        self._busy = fut
        return await asyncio.shield(fut)

    @property
    def blocked(self) -> bool:
        """True while a call is still running."""
        return self._busy is not None and not self._busy.done()


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def _consume(fut: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a call whose caller was cancelled (no warning)."""
    if not fut.cancelled():
        fut.exception()


def read_limited(path: Path, limit: int) -> bytes:
    """The file's bytes; ProbeError("protocol") if it is larger than ``limit``."""
    with path.open("rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ProbeError("protocol", f"{path.name} is larger than {limit} bytes")
    return data


@dataclass
class PendingHash:
    """A checksum verification in progress, resumed run after run."""

    path: Path
    identity: tuple[Any, ...]
    algorithm: str
    expected: str
    size: int
    offset: int = 0
    hasher: Any = field(default=None)

    def __post_init__(self) -> None:
        if self.hasher is None:
            self.hasher = hashlib.new(self.algorithm)

    @property
    def done(self) -> bool:
        """True once every byte has been hashed."""
        return self.offset >= self.size

    def matches(self) -> bool:
        """After ``done``: does the digest equal the expected value?"""
        return bool(self.hasher.hexdigest().lower() == self.expected.lower())

    def advance(self, budget: int) -> None:
        """Hash up to ``budget`` more bytes (blocking; run on the I/O worker).

        A file that shrank or changed identity makes the read stop short; the
        caller notices through ``done``/``identity`` on the next run.
        """
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            while budget > 0 and self.offset < self.size:
                chunk = fh.read(min(_READ_CHUNK, budget, self.size - self.offset))
                if not chunk:
                    raise FileNotFoundError(f"{self.path.name} is shorter than expected")
                self.hasher.update(chunk)
                self.offset += len(chunk)
                budget -= len(chunk)


def file_identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """What must stay the same for a partial hash to stay valid."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


Listing = list[tuple[Path, tuple[int, int, int, int]]]
"""Files with their identity (``file_identity``)."""


def list_files(directory: Path, pattern: str, limit: int) -> Listing:
    """Regular files matching ``pattern``, newest first by mtime, at most ``limit``
    (blocking: call it on the worker)."""
    if not directory.is_dir():
        raise ProbeError("other", f"{directory} is not a readable directory")
    found = []
    for p in directory.glob(pattern):
        try:
            st = p.stat()
        except OSError:
            continue  # removed between glob and stat
        if stat.S_ISREG(st.st_mode):
            found.append((p, file_identity(st)))
    found.sort(key=lambda e: e[1][3], reverse=True)
    return found[:limit]
