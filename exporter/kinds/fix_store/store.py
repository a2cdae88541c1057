"""The session's FileStore: ``.seqnums`` and ``.session`` read under the run's budget,
and the integrity of the sequence numbers across cycles.

A path that is not a regular file fails the run as ``config`` without being
opened; a store file of more than ``MAX_STORE_FILE_BYTES`` (a real one holds a
line) fails it as ``protocol`` unread.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...budget import ReadBudget
from ...file_io import charge, check_regular, file_error
from ...probe import ProbeError
from .config import FixStoreTarget
from .files import read_creation_time, read_seqnums

MAX_STORE_FILE_BYTES = 4096
"""``.seqnums`` holds 43 bytes, ``.session`` 17: anything this large is not one."""


class StoreHistory:
    """The store values of the last cycle, and whether a seqnum went backwards since."""

    def __init__(self) -> None:
        self.creation: int | None = None
        self.seqnums: tuple[int, int] | None = None
        self.integrity_ok = True
        self.regressions = 0

    def update(self, creation: int | None, seqnums: tuple[int, int]) -> None:
        """Latch the integrity signal when a seqnum goes backwards without a reset."""
        if creation != self.creation:
            self.integrity_ok = True  # a new store: sequence numbers start again
        elif self.seqnums is not None and (
            seqnums[0] < self.seqnums[0] or seqnums[1] < self.seqnums[1]
        ):
            self.integrity_ok = False
            self.regressions += 1
        self.creation, self.seqnums = creation, seqnums


def _store_file(path: Path, budget: ReadBudget) -> Path:
    """``path`` once it is known to be a small regular file (charged to the budget)."""
    st = os.stat(path)
    check_regular(st, path.name)
    if st.st_size > MAX_STORE_FILE_BYTES:
        size = f"{st.st_size} bytes"
        raise ProbeError("protocol", f"{path.name} is {size}: not a QuickFIX store file")
    charge(budget, st.st_size, path.name)
    return path


def read_store(target: FixStoreTarget, budget: ReadBudget) -> tuple[int | None, tuple[int, int]]:
    """The store's creation time (None if unreadable) and its ``(next sender, next target)``."""
    base = target.store_path / target.prefix
    try:
        seqnums = read_seqnums(_store_file(base.with_name(base.name + ".seqnums"), budget))
        creation = read_creation_time(_store_file(base.with_name(base.name + ".session"), budget))
    except FileNotFoundError:
        raise ProbeError("config", f"no QuickFIX store for {target.prefix} in store_path") from None
    except ValueError as exc:
        raise ProbeError("protocol", f"unreadable .seqnums: {exc}") from None
    except OSError as exc:
        raise file_error(exc, Path(exc.filename or base).name) from None
    return creation, seqnums
