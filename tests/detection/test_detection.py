"""Fault to page, measured on the real chain (stack/chain.py): every fault of
faults.py raises its alert at every receiver its routes name within the bound
its rule's ``for:``, the intervals, the probe deadline and the group wait allow,
and resolves after the heal; a healthy stack notifies nothing but the Watchdog;
with the market closed, an idle feed, stopped ingest, a stale heartbeat and a
logged-out FIX session page nobody while a Redis that goes down still pages.

``TRADEOPS_DETECTION_SPEED=shipped`` (``make test-long``) runs the same with the
shipped durations and realistic intervals and writes docs/detection.md.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.chain import SPEEDS, Chain

from ..helpers import report
from .closed import ClosedMarket, closed_market
from .faults import FAULTS
from .runner import Outcome, Run, table

SPEED = SPEEDS[os.environ.get("TRADEOPS_DETECTION_SPEED", "fast")]
QUIET_SECONDS = {"fast": 25.0, "shipped": 600.0}[SPEED.name]
REPO = Path(__file__).resolve().parents[2]
TABLE_FILE = REPO / "docs" / "detection.md"


async def _run(root: Path) -> tuple[Run, ClosedMarket]:
    chain = Chain(root, SPEED)
    try:
        await chain.start()
        run = Run(chain)
        await run.phases(QUIET_SECONDS, FAULTS)
        closed = await closed_market(run)
        return run, closed
    finally:
        await chain.stop()


@pytest.fixture(scope="module")
def measured() -> Iterator[tuple[Run, ClosedMarket]]:
    """The whole run, once for the module: start, quiet, faults, closed market."""
    root = Path(tempfile.mkdtemp(prefix="tradeops-chain-"))
    try:
        yield asyncio.run(_run(root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _outcome(run: Run, name: str) -> Outcome:
    (found,) = [o for o in run.outcomes if o.fault.name == name]
    return found


def test_a_healthy_stack_notifies_nothing_but_the_watchdog(
    measured: tuple[Run, ClosedMarket],
) -> None:
    run, _ = measured
    assert run.watchdog_pings >= 1
    assert [n.line() for n in run.quiet] == [], f"in {run.quiet_seconds:.0f} s"


@pytest.mark.parametrize("name", [f.name for f in FAULTS])
def test_fault_pages_within_its_bound_and_resolves(
    measured: tuple[Run, ClosedMarket], name: str
) -> None:
    out = _outcome(measured[0], name)
    assert not out.error, out.error
    assert out.deliveries, "the alert's routes deliver somewhere"
    assert set(out.detected) == set(out.deliveries)
    for delivery, seconds in out.detected.items():
        assert seconds <= out.bound, f"{delivery}: {seconds:.1f} s > bound {out.bound:.1f} s"
    for delivery, seconds in out.resolved.items():
        assert seconds <= out.resolve_bound, f"{delivery}: resolved after {seconds:.1f} s"
    assert out.resolution is not None
    assert out.unwanted == []


def test_a_closed_market_pages_nobody_but_a_redis_down(
    measured: tuple[Run, ClosedMarket],
) -> None:
    _, closed = measured
    assert not closed.error, closed.error
    assert closed.gated, "the closed calendar gated the chain's targets"
    assert closed.paged, "RedisDown still paged"
    assert closed.unwanted == []


def test_the_detection_table(measured: tuple[Run, ClosedMarket]) -> None:
    run, closed = measured
    text = table(run.outcomes)
    summary = (
        f"quiet: {len(run.quiet)} notifications but {run.watchdog_pings} Watchdog pings"
        f" in {run.quiet_seconds:.0f} s (and {len(run.startup)} RedisRestarted warnings of"
        f" servers started then); closed market: {len(closed.unwanted)} unwanted,"
        f" RedisDown paged after {closed.paged_after:.1f} s"
    )
    report(f"detection ({SPEED.name}):\n{text}{summary}")
    if SPEED.name == "shipped":
        TABLE_FILE.write_text(
            "# Detection times, measured\n\n"
            "Written by `make test-long` (shipped `for:` durations, 15 s scrape,"
            " evaluation and probe intervals, 10 s probe deadline).\n\n"
            f"{text}\n{summary}\n",
            encoding="utf-8",
        )
    assert len(run.outcomes) == len(FAULTS)
