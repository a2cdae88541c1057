"""Reading a QuickFIX engine's files: log tails, ``.seqnums``, ``.session``, timestamps.

Blocking file I/O only; the ``fix_store`` probe runs it in a worker thread.
"""

from __future__ import annotations

import calendar
import os
import time
from pathlib import Path
from typing import BinaryIO

_MAX_LINE_BYTES = 1 << 20
_TORN_READ_RETRIES = 5
_STORE_FILE_BYTES = 4096
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block open()
_SEQNUM_DIGITS = 20


class Tail:
    """Follows one growing log file across cycles, like ``tail -F``.

    Remembers the open file and its offset, so each read costs the new bytes
    only. A new inode at the path (rotation) drains the old file to its end
    first; a file shorter than the offset (truncation) is read again from its
    start. The first open of a file starts ``backfill`` bytes before its end.
    """

    def __init__(self, path: Path, backfill: int) -> None:
        self.path = path
        self.backfill = backfill
        self.file: BinaryIO | None = None
        self.ident: tuple[int, int] | None = None
        self.offset = 0
        self.size = 0
        self.partial = b""
        self.skip_first_line = False
        self.opened_before = False
        self.rotated = False
        self.bytes_read = 0
        self.reopens = 0

    @property
    def backlog(self) -> int:
        """Bytes in the file beyond what has been read."""
        return max(0, self.size - self.offset) if self.file is not None else 0

    def read_lines(self, max_bytes: int) -> list[bytes]:
        """The complete lines appended since the last call (at most ``max_bytes`` read)."""
        try:
            st: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            st = None
        lines: list[bytes] = []
        if self.file is not None:
            if st is None or (st.st_ino, st.st_dev) != self.ident:
                self.rotated = True
            elif st.st_size < self.offset:
                self.file.seek(0)
                self.offset, self.partial = 0, b""
                self.reopens += 1
        if self.file is not None and self.rotated:
            data = self._read(max_bytes)
            lines = self._split(data, final=len(data) < max_bytes)
            if len(data) >= max_bytes:
                return lines  # the rotated file has more: keep draining it next cycle
            self.close()
            self.reopens += 1
            max_bytes -= len(data)
        if self.file is None and st is not None:
            self._open()
        if self.file is not None:
            lines += self._split(self._read(max_bytes), final=False)
            self.size = os.fstat(self.file.fileno()).st_size
        return lines

    def _open(self) -> None:
        try:
            f = open(os.open(self.path, _OPEN_FLAGS), "rb")  # noqa: SIM115 (kept open)
        except FileNotFoundError:
            return
        st = os.fstat(f.fileno())
        self.file, self.ident, self.rotated = f, (st.st_ino, st.st_dev), False
        self.offset, self.partial, self.size = 0, b"", st.st_size
        if not self.opened_before and st.st_size > self.backfill:
            self.offset = st.st_size - self.backfill
            f.seek(self.offset)
            self.skip_first_line = True
        self.opened_before = True

    def _read(self, max_bytes: int) -> bytes:
        assert self.file is not None
        available = os.fstat(self.file.fileno()).st_size - self.offset
        want = min(max_bytes, available)
        data = self.file.read(want) if want > 0 else b""
        self.offset += len(data)
        self.bytes_read += len(data)
        return data

    def _split(self, data: bytes, final: bool) -> list[bytes]:
        if not data and not (final and self.partial):
            return []
        if self.skip_first_line:
            cut = data.find(b"\n")
            if cut < 0:
                return []
            data, self.skip_first_line = data[cut + 1 :], False
        parts = (self.partial + data).split(b"\n")
        self.partial = b"" if final else parts.pop()
        if len(self.partial) > _MAX_LINE_BYTES:
            # drop the line whole: the rest of it, up to its newline, is not a line
            self.partial, self.skip_first_line = b"", True
        lines = (p[:-1] if p.endswith(b"\r") else p for p in parts)
        return [line for line in lines if line]

    def close(self) -> None:
        """Close the file (the next read opens the path again from its start)."""
        if self.file is not None:
            self.file.close()
        self.file, self.ident, self.rotated, self.partial = None, None, False, b""
        self.skip_first_line = False


class Clock:
    """Parses QuickFIX UTC timestamps ``YYYYMMDD-HH:MM:SS[.fff...]`` to Unix seconds."""

    def __init__(self) -> None:
        self._prefix = b""
        self._base = 0

    def __call__(self, text: bytes) -> float | None:
        head = text[:17]
        if head != self._prefix:
            base = parse_utc_seconds(head)
            if base is None:
                return None
            self._prefix, self._base = head, base
        frac = text[18:27]  # nanoseconds at most: a float keeps no more
        if text[17:18] == b"." and frac.isdigit():
            return self._base + int(frac) / 10.0 ** len(frac)
        return float(self._base)


def parse_utc_seconds(text: bytes) -> int | None:
    """``YYYYMMDD-HH:MM:SS`` (UTC) -> Unix seconds; None if malformed."""
    if len(text) != 17 or text[8:9] != b"-" or text[11:12] != b":" or text[14:15] != b":":
        return None
    digits = (text[0:4], text[4:6], text[6:8], text[9:11], text[12:14], text[15:17])
    if not all(d.isdigit() for d in digits):
        return None
    y, mo, d, h, mi, s = (int(x) for x in digits)
    if not (y and 1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1]):
        return None  # timegm would roll day 99 over into a later month
    if h > 23 or mi > 59 or s > 60:  # 60: a leap second
        return None
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


def read_seqnums(path: Path) -> tuple[int, int]:
    """``(next sender, next target)`` from a ``.seqnums`` file.

    Both layouts parse: ``%020d : %020d`` (QuickFIX 1.16+) and ``%010d : %010d``;
    more than 20 digits is not a seqnum. A torn read (the engine rewrites the file
    in place) is retried.
    """
    problem = "empty"
    for attempt in range(_TORN_READ_RETRIES):
        text = _read_small(path)
        sender, sep, target = text.partition(b":")
        sender, target = sender.strip(), target.strip()
        if sep and _seqnum(sender) and _seqnum(target):
            return int(sender), int(target)
        problem = "malformed"
        time.sleep(0.002 * (attempt + 1))
    raise ValueError(f"{path.name}: {problem} after {_TORN_READ_RETRIES} reads")


def _seqnum(text: bytes) -> bool:
    return 0 < len(text) <= _SEQNUM_DIGITS and text.isdigit()


def read_creation_time(path: Path) -> int | None:
    """The store's creation time (``.session`` file) in Unix seconds."""
    for _ in range(_TORN_READ_RETRIES):
        value = parse_utc_seconds(_read_small(path).strip()[:17])
        if value is not None:
            return value
        time.sleep(0.002)
    return None


def _read_small(path: Path) -> bytes:
    """A store file's bytes, at most a few KiB, never blocking on a FIFO."""
    with open(os.open(path, _OPEN_FLAGS), "rb") as f:
        return f.read(_STORE_FILE_BYTES + 1)
