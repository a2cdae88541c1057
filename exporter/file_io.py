"""Bounded I/O for the file-reading kinds (backups, drills, fix_store): subprocesses
that are killed on timeout, blocking file work on one worker thread, file reads
that never block on a FIFO and count against the run's response budget, and
checksums resumed across runs.

A path that names the wrong thing fails with one reason, the same every run:
``config`` when it is not a regular file (a directory, a FIFO, a device), a
symbolic-link loop or runs through a file; ``auth`` when the exporter's user may
not read it; ``protocol`` when it holds more than a limit or the budget allows
(or what it holds cannot be parsed); ``timeout`` when the file system does not
answer before the deadline; ``other`` for the rest (an I/O error).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import signal
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from .budget import ReadBudget, format_size
from .probe import ProbeError, Reason

R = TypeVar("R")

_READ_CHUNK = 1 << 20
_STDERR_KEEP = 2000
_STDERR_SHOWN = 300
_TERM_GRACE = 0.5
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
"""O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer."""
_AUTH_ERRNOS = frozenset({errno.EACCES, errno.EPERM})
_CONFIG_ERRNOS = frozenset({errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG})
_FILE_TYPES = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


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
        waiter.add_done_callback(_consume)  # its timeout, should a cancel leave it alone
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


class BlockingIO:
    """Runs blocking file work on a daemon thread, one call at a time.

    A thread stuck in the kernel (a hung network filesystem) cannot be
    cancelled; instead of piling up threads, later calls fail with a timeout
    reason until it returns. Daemon threads cannot hold up the exporter's exit.
    """

    def __init__(self, busy: str = "a previous file operation is still blocked") -> None:
        self._busy: asyncio.Future[Any] | None = None
        self._busy_message = busy

    async def call(self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` on a worker; a cancelled caller leaves it to finish alone."""
        if self._busy is not None and not self._busy.done():
            raise ProbeError("timeout", self._busy_message)
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

    def after(self, fn: Callable[[], object]) -> None:
        """Call ``fn`` (on the loop) now, or once the call still running returns:
        how a state closes files a stuck worker may still be reading."""
        if self._busy is None or self._busy.done():
            fn()
        else:
            self._busy.add_done_callback(lambda _: fn())


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


def file_error(exc: OSError, what: str) -> ProbeError:
    """The failure for a file operation that raised ``exc`` (see the module's reasons)."""
    if exc.errno in _AUTH_ERRNOS:
        return ProbeError("auth", f"{what}: permission denied to the exporter's user")
    reason: Reason = "config" if exc.errno in _CONFIG_ERRNOS else "other"
    return ProbeError(reason, f"{what}: {exc.strerror or exc}")


def file_type(mode: int) -> str:
    """``a directory``, ``a FIFO``, ... for a mode that is not a regular file's."""
    return next((name for test, name in _FILE_TYPES if test(mode)), "not a regular file")


def check_regular(st: os.stat_result, what: str) -> None:
    """ProbeError("config") unless ``st`` is a regular file's."""
    if not stat.S_ISREG(st.st_mode):
        raise ProbeError("config", f"{what} is {file_type(st.st_mode)}, not a regular file")


def charge(budget: ReadBudget | None, n: int, what: str) -> None:
    """Count ``n`` bytes read from ``what``; ProbeError("protocol") once over the budget."""
    if budget is not None and not budget.charge(n):
        raise ProbeError(
            "protocol",
            f"{what}: more than the response budget of {format_size(budget.limit)}"
            " read in one run (response_budget)",
        )


def room(budget: ReadBudget | None, limit: int) -> int:
    """How many more bytes this run may read: ``limit``, or less if the budget says so."""
    return limit if budget is None else max(0, min(limit, budget.limit - budget.used))


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file, without ever blocking on a
    FIFO (its type is checked before and after the non-blocking open). OSError as raised."""
    check_regular(os.stat(path), path.name)
    fh = open(os.open(path, _OPEN_FLAGS), "rb")  # noqa: SIM115 (returned open)
    try:
        check_regular(os.fstat(fh.fileno()), path.name)  # replaced between stat and open
    except BaseException:
        fh.close()
        raise
    return fh


def read_limited(path: Path, limit: int, budget: ReadBudget | None = None) -> bytes:
    """The bytes of the regular file at ``path``; ProbeError("protocol") if it is larger
    than ``limit`` or than what is left of the run's ``budget`` (charged with them).

    FileNotFoundError passes through (what a missing file means is the caller's);
    every other failure is a ProbeError with the module's reasons."""
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise ProbeError("protocol", f"{path.name} is larger than {limit} bytes")
            if size > room(budget, limit):
                charge(budget, size, path.name)
            data = fh.read(room(budget, limit) + 1)  # a file that grows: read one more
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise file_error(exc, path.name) from None
    if len(data) > limit:
        raise ProbeError("protocol", f"{path.name} is larger than {limit} bytes")
    charge(budget, len(data), path.name)
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
        with open_regular(self.path) as fh:
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
    (blocking: call it on the worker). Other matches (FIFOs, directories, dangling
    links) are left out.

    A missing directory is ProbeError("other") (a volume not mounted); one that is
    not a directory or cannot be listed fails with the module's reasons, since a
    listing that silently comes back empty would read as "no backups"."""
    what = str(directory)
    try:
        st = os.stat(directory)
        if not stat.S_ISDIR(st.st_mode):
            raise ProbeError("config", f"{what} is {file_type(st.st_mode)}, not a directory")
        with os.scandir(directory):
            pass  # glob() hides a directory it may not read
    except FileNotFoundError:
        raise ProbeError("other", f"{what} does not exist (not mounted?)") from None
    except OSError as exc:
        raise file_error(exc, what) from None
    found = []
    for p in directory.glob(pattern):
        try:
            st = p.stat()
        except OSError:
            continue  # removed between glob and stat, or a dangling link
        if stat.S_ISREG(st.st_mode):
            found.append((p, file_identity(st)))
    found.sort(key=lambda e: e[1][3], reverse=True)
    return found[:limit]
