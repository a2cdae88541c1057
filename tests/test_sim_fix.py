"""The FIX traffic simulator against the real acceptor."""

from __future__ import annotations

import asyncio

from stack import sim_fix
from stack.fix import FixAcceptor

from .fixtures_fix import fix_acceptor
from .helpers import eventually

__all__ = ["fix_acceptor"]


async def test_orders_are_filled_and_the_session_ends_cleanly(fix_acceptor: FixAcceptor) -> None:
    stats = await sim_fix.run(
        fix_acceptor.address, orders=3, order_interval=0.05, test_request_every=2, seconds=1.5
    )
    assert stats.logged_on and stats.logged_out
    assert stats.orders_sent == 3 and stats.fills == 3
    assert stats.received.get("0", 0) >= 1  # the answer to its TestRequest at least
    assert stats.received.get("3", 0) == 0  # no order was rejected by the data dictionary


async def test_stops_when_the_event_is_set(fix_acceptor: FixAcceptor) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(sim_fix.run(fix_acceptor.address, order_interval=0.05, stop=stop))
    log = fix_acceptor.log_dir / f"{fix_acceptor.prefix('SIM')}.messages.current.log"

    async def trading() -> bool:  # not a fixed sleep: the logon may take longer under load
        return log.exists() and log.read_bytes().count(b"\x0135=D\x01") >= 2

    await eventually(trading, timeout=10)
    stop.set()
    stats = await asyncio.wait_for(task, 5)
    assert stats.orders_sent >= 2 and stats.logged_out


async def test_cancels_and_replaces_of_open_and_unknown_orders(fix_acceptor: FixAcceptor) -> None:
    stats = await sim_fix.run(
        fix_acceptor.address, orders=1, cancels=1, replaces=1, order_interval=0.05, seconds=1.0
    )
    assert stats.orders_sent == 1 and stats.fills == 1  # the resting orders are not filled
    assert stats.resting_sent == 2 and stats.new_acks == 2
    assert stats.cancels_sent == 2 and stats.replaces_sent == 2
    assert stats.canceled == 1 and stats.replaced == 1 and stats.cancel_rejects == 2
    assert stats.received.get("3", 0) == 0  # nothing rejected by the data dictionary
    log = fix_acceptor.log_dir / f"{fix_acceptor.prefix('SIM')}.messages.current.log"
    text = log.read_text()
    canceled = next(
        line for line in text.splitlines() if "\x0111=SIM-F1\x01" in line and "\x0135=8\x01" in line
    )
    assert "\x0141=SIM-R1\x01" in canceled
    assert "\x0139=4\x01" in canceled and "\x01150=4\x01" in canceled
    assert "\x01434=1\x01" in text and "\x01434=2\x01" in text and "\x01102=1\x01" in text
