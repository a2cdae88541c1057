"""Bounded file I/O for the file-reading kinds (backups, drills, fix_store): blocking
file work on one worker thread, file reads that never block on a FIFO and count
against the run's response budget, and directory listings that fail rather than
come back empty. (Commands: ``exporter.commands``.)

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
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from .budget import ReadBudget, format_size
from .probe import ProbeError, Reason

R = TypeVar("R")

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
        fut.add_done_callback(consume_outcome)

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


def consume_outcome(fut: asyncio.Future[Any]) -> None:
    """Retrieve a future's outcome, so that one whose awaiting caller was cancelled
    logs no "exception was never retrieved" warning (a done callback)."""
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
