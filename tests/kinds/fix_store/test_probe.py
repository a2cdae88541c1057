"""The probe on its worker (``probe``): a read stuck in the kernel fails later runs at
once, and the runs recover when it returns."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from exporter.kinds.fix_store import KIND
from exporter.kinds.fix_store.probe import FixStoreState
from exporter.scheduler import run_probe

from .support import store_target, write_store


async def test_a_hung_read_fails_later_runs_at_once_until_it_returns(tmp_path: Path) -> None:
    """A read stuck in the kernel (a hung mount) cannot be cancelled. FIFOs are refused
    unopened (test_fix_store_faults.py), so a worker call blocked on an event stands in."""
    write_store(tmp_path)
    target = store_target(tmp_path)
    state = FixStoreState(target)
    release = threading.Event()
    with pytest.raises(TimeoutError):  # the run's deadline, while the read hangs
        await asyncio.wait_for(state.io.call(release.wait, 30), 0.3)
    try:
        second = await run_probe(KIND, target, state, 0.3)
    finally:
        release.set()
    assert second.reason == "timeout" and second.duration < 0.1
    assert "has not returned" in str(second.error)
    try:
        for _ in range(50):
            outcome = await run_probe(KIND, target, state, 0.3)
            if outcome.ok:
                break
            await asyncio.sleep(0.05)
        assert outcome.ok, outcome.error
    finally:
        await asyncio.wait_for(state.aclose(), 5)
