"""FIX traffic simulator: a client session that trades with the stack's acceptor.

It logs on, keeps the session alive with heartbeats, answers TestRequests,
sends its own TestRequests now and then, and sends NewOrderSingle (35=D)
messages that the acceptor fills (35=8) — so the acceptor's FileStore and
FileLog hold real engine files for the passive reader.

With ``cancels``/``replaces`` it also runs that many cancel (35=F) and
cancel/replace (35=G) rounds, one per order interval: a resting order (a limit
far below the market, which the acceptor leaves open: 35=8 New), an F or G for
it (35=8 Canceled or Replaced), and an F or G for a ClOrdID never sent (35=9).

Entry point for the demo::

    stats = await run("127.0.0.1:PORT", stop=event)  # until the event is set

or ``python -m stack.sim_fix 127.0.0.1:PORT [--seconds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
from dataclasses import dataclass, field

import simplefix


@dataclass
class SimStats:
    """What one simulator run did.

    ``fills`` counts ExecutionReports other than New/Canceled/Replaced;
    ``cancels_sent``/``replaces_sent`` count every F/G (two per round).
    """

    logged_on: bool = False
    orders_sent: int = 0
    fills: int = 0
    resting_sent: int = 0
    cancels_sent: int = 0
    replaces_sent: int = 0
    new_acks: int = 0
    canceled: int = 0
    replaced: int = 0
    cancel_rejects: int = 0
    test_requests_sent: int = 0
    heartbeats_received: int = 0
    logged_out: bool = False
    received: dict[str, int] = field(default_factory=dict)


class _Session:
    def __init__(
        self,
        writer: asyncio.StreamWriter,
        sender: str,
        target: str,
        begin_string: str,
    ) -> None:
        self.writer = writer
        self.header = ((8, begin_string), (49, sender), (56, target))
        self.seq = 1
        self.last_sent = 0.0

    def send(self, msg_type: str, *fields: tuple[int, str | int]) -> None:
        msg = simplefix.FixMessage()
        msg.append_pair(8, self.header[0][1], header=True)
        msg.append_pair(35, msg_type, header=True)
        msg.append_pair(49, self.header[1][1], header=True)
        msg.append_pair(56, self.header[2][1], header=True)
        msg.append_pair(34, self.seq, header=True)
        msg.append_utc_timestamp(52, precision=3, header=True)
        for tag, value in fields:
            msg.append_pair(tag, value)
        self.seq += 1
        self.writer.write(msg.encode())
        self.last_sent = asyncio.get_running_loop().time()


async def _reader(
    reader: asyncio.StreamReader, session: _Session, stats: SimStats, logon: asyncio.Event
) -> None:
    parser = simplefix.FixParser()
    while data := await reader.read(65536):
        parser.append_buffer(data)
        while (msg := parser.get_message()) is not None:
            kind = (msg.get(35) or b"?").decode()
            stats.received[kind] = stats.received.get(kind, 0) + 1
            if kind == "A":
                stats.logged_on = True
                logon.set()
            elif kind == "0":
                stats.heartbeats_received += 1
            elif kind == "1":
                session.send("0", (112, (msg.get(112) or b"?").decode()))
            elif kind == "8":
                exec_type = (msg.get(150) or b"").decode()
                if exec_type == "0":
                    stats.new_acks += 1
                elif exec_type == "4":
                    stats.canceled += 1
                elif exec_type == "5":
                    stats.replaced += 1
                else:
                    stats.fills += 1
            elif kind == "9":
                stats.cancel_rejects += 1
            elif kind == "5":
                stats.logged_out = True
                return


async def run(
    address: str,
    *,
    sender: str = "SIM",
    target: str = "VENUE",
    begin_string: str = "FIX.4.4",
    heartbeat_interval: int = 1,
    order_interval: float = 0.5,
    orders: int | None = None,
    cancels: int = 0,
    replaces: int = 0,
    test_request_every: int = 4,
    heartbeats: bool = True,
    seconds: float | None = None,
    stop: asyncio.Event | None = None,
) -> SimStats:
    """Trade until ``stop`` is set or ``seconds`` pass, then log out.

    Sends one order every ``order_interval`` seconds (``orders`` of them, or
    without end), along with the ``cancels`` then ``replaces`` rounds (see the
    module docstring), a TestRequest every ``test_request_every`` orders, and a
    Heartbeat whenever it sent nothing for ``heartbeat_interval`` seconds
    (unless ``heartbeats`` is False: then the acceptor sends TestRequests,
    which it still answers). Raises OSError if the acceptor is not there.
    """
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
    stats = SimStats()
    session = _Session(writer, sender, target, begin_string)
    logon = asyncio.Event()
    read_task = asyncio.create_task(_reader(reader, session, stats, logon))
    heartbeat_task: asyncio.Task[None] | None = None
    stop = stop or asyncio.Event()
    try:
        session.send("A", (98, 0), (108, heartbeat_interval), (141, "Y"))
        await asyncio.wait_for(logon.wait(), 5)
        if heartbeats:
            heartbeat_task = asyncio.create_task(_heartbeats(session, heartbeat_interval))
        rounds = ["F"] * cancels + ["G"] * replaces
        await _trade(
            session, stats, order_interval, orders, rounds, test_request_every, seconds, stop
        )
        if heartbeat_task is not None:
            heartbeat_task.cancel()
        session.send("5")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(read_task), 2)
    finally:
        for task in (read_task, heartbeat_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
        writer.close()
    return stats


async def _heartbeats(session: _Session, interval: int) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(max(0.01, session.last_sent + interval - loop.time()))
        if loop.time() - session.last_sent >= interval:
            session.send("0")


async def _trade(
    session: _Session,
    stats: SimStats,
    order_interval: float,
    orders: int | None,
    rounds: list[str],
    test_request_every: int,
    seconds: float | None,
    stop: asyncio.Event,
) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds if seconds is not None else None
    ids = itertools.count(1)
    while not stop.is_set() and (end is None or loop.time() < end):
        orders_done = orders is not None and stats.orders_sent >= orders
        if orders_done and not rounds:
            remaining = None if end is None else max(0.0, end - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), remaining)
            return
        n = next(ids)
        if not orders_done:
            _order(session, "D", f"SIM-{n}", n, "101.25")
            stats.orders_sent += 1
        if rounds:
            _round(session, stats, rounds.pop(0), n)
        if test_request_every and n % test_request_every == 0:
            session.send("1", (112, f"SIM-TR-{n}"))
            stats.test_requests_sent += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), order_interval)


def _order(
    session: _Session, msg_type: str, clordid: str, n: int, price: str, *extra: tuple[int, str]
) -> None:
    """A limit order entry (D, or G with OrigClOrdID in ``extra``)."""
    session.send(
        msg_type,
        (11, clordid),
        *extra,
        (21, 1),
        (55, ("AAPL", "MSFT", "EURUSD")[n % 3]),
        (54, 1 + n % 2),
        (38, 100 * (1 + n % 5)),
        (40, 2),
        (44, price),
        (59, 0),
        (60, _utc_now()),
    )


def _round(session: _Session, stats: SimStats, msg_type: str, n: int) -> None:
    """A resting order, an F or G for it, and one for a ClOrdID never sent."""
    _order(session, "D", f"SIM-R{n}", n, "0.50")
    stats.resting_sent += 1
    for orig, clordid in (
        (f"SIM-R{n}", f"SIM-{msg_type}{n}"),
        (f"SIM-NONE-{n}", f"SIM-{msg_type}{n}X"),
    ):
        if msg_type == "G":
            _order(session, "G", clordid, n, "0.40", (41, orig))
            stats.replaces_sent += 1
        else:
            session.send(
                "F",
                (41, orig),
                (11, clordid),
                (55, ("AAPL", "MSFT", "EURUSD")[n % 3]),
                (54, 1 + n % 2),
                (38, 100 * (1 + n % 5)),
                (60, _utc_now()),
            )
            stats.cancels_sent += 1


def _utc_now() -> str:
    """UTCTimestamp with milliseconds, as FIX 4.4 wants for TransactTime (60)."""
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y%m%d-%H:%M:%S.") + f"{now.microsecond // 1000:03d}"


def main() -> None:
    """Command-line entry: trade with the acceptor at ADDRESS."""
    parser = argparse.ArgumentParser(description="FIX traffic simulator")
    parser.add_argument("address")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--sender", default="SIM")
    parser.add_argument("--target", default="VENUE")
    args = parser.parse_args()
    stats = asyncio.run(
        run(args.address, sender=args.sender, target=args.target, seconds=args.seconds)
    )
    print(stats)


if __name__ == "__main__":
    main()
