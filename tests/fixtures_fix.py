"""FIX fixtures: a real QuickFIX acceptor per test (tests pause or kill it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.fix import FixAcceptor

MONITOR_PASSWORD = "monitor-pass-1"


@pytest.fixture
def fix_acceptor(tmp_path: Path) -> Iterator[FixAcceptor]:
    """A QuickFIX 4.4 acceptor (VENUE) accepting MONITOR, SIM and AUTHED (password)."""
    server = FixAcceptor(
        tmp_path,
        sessions=("MONITOR", "SIM", "AUTHED"),
        passwords={"AUTHED": MONITOR_PASSWORD},
    ).start()
    yield server
    server.stop()
