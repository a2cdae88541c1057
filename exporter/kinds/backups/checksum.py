"""Verification of the newest backup's checksum, resumed run after run.

Each run hashes at most ``checksum.bytes_per_run`` bytes of the file; the hash
state is kept between runs while the file's identity (device, inode, size,
mtime) stays the same. A completed verification is reported until the file
changes or ``reverify_after`` has passed; while a newer one is under way, the
previous result keeps being reported.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...file_io import file_identity, open_regular
from ...probe import ProbeContext, ProbeError, ProbeResult
from . import metrics as M
from .config import BackupTarget
from .sources import Backup

if TYPE_CHECKING:
    from .probe import BackupState

_READ_CHUNK = 1 << 20


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


@dataclass(slots=True)
class Verified:
    """The outcome of a completed checksum verification."""

    identity: tuple[Any, ...]
    checksum: tuple[str, str]
    ok: bool
    at: float


class Checksums:
    """A backup set's checksum memory: the last completed verification and the one
    in progress."""

    __slots__ = ("pending", "verified")

    def __init__(self) -> None:
        self.pending: PendingHash | None = None
        self.verified: Verified | None = None

    def still_valid(
        self, ident: tuple[Any, ...], checksum: tuple[str, str], now: float, reverify_after: float
    ) -> Verified | None:
        """The last verification, if it was of this file and checksum and is recent."""
        done = self.verified
        if done is None or (done.identity, done.checksum) != (ident, checksum):
            return None
        return done if now - done.at < reverify_after else None

    def resume(
        self, backup: Backup, path: Path, st: os.stat_result | None, now: float
    ) -> PendingHash | None:
        """The verification to advance: the one under way if it is of this file, else a
        new one. None when the file fails before a byte is read (missing, or not the
        manifest's size): that outcome is recorded in ``verified``."""
        assert backup.checksum is not None
        ident = _identity(st)
        pending = self.pending
        if pending is not None and (pending.identity, pending.path) == (ident, path):
            return pending
        self.pending = None
        if st is None or (backup.size is not None and st.st_size != backup.size):
            self.verified = Verified(ident, backup.checksum, False, now)
            return None
        algorithm, expected = backup.checksum
        self.pending = PendingHash(path, ident, algorithm, expected, st.st_size)
        return self.pending

    def complete(self, pending: PendingHash, checksum: tuple[str, str], at: float) -> Verified:
        """Record the finished ``pending`` verification."""
        self.verified = Verified(pending.identity, checksum, pending.matches(), at)
        self.pending = None
        return self.verified


def _regular_stat(path: Path) -> os.stat_result | None:
    """The file's status; None if it is missing, or a FIFO or a directory in its place
    (blocking: run on the I/O worker)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def _identity(st: os.stat_result | None) -> tuple[Any, ...]:
    return ("missing",) if st is None else file_identity(st)


async def verify(
    r: ProbeResult, target: BackupTarget, backup: Backup, ctx: ProbeContext[BackupState]
) -> None:
    """Advance (or start) the checksum verification of ``backup``'s file."""
    assert backup.file is not None and backup.checksum is not None
    checks, name, now = ctx.state.checksums, target.name, ctx.now()
    path = Path(backup.file)
    st = await ctx.state.io.call(_regular_stat, path)
    done = checks.verified
    valid = checks.still_valid(_identity(st), backup.checksum, now, target.checksum.reverify_after)
    if valid is not None:
        _checksum_series(r, name, valid, 1.0)
        return
    pending = checks.resume(backup, path, st, now)
    if pending is None:
        assert checks.verified is not None
        _checksum_series(r, name, checks.verified, 1.0)
        return
    try:
        await ctx.state.io.call(pending.advance, target.checksum.bytes_per_run)
    except (OSError, ProbeError):
        checks.pending = None  # replaced or truncated meanwhile: start over next run
        pending = None
    if pending is not None and pending.done:
        _checksum_series(r, name, checks.complete(pending, backup.checksum, ctx.now()), 1.0)
        return
    if done is not None:
        _checksum_series(r, name, done, None)
    if pending is not None:
        r.add(M.CHECKSUM_PROGRESS, pending.offset / max(pending.size, 1), name)


def _checksum_series(r: ProbeResult, name: str, v: Verified, progress: float | None) -> None:
    r.add(M.CHECKSUM_OK, v.ok, name)
    r.add(M.CHECKSUM_VERIFIED, v.at, name)
    r.add(M.CHECKSUM_PROGRESS, progress, name)
