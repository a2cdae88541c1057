"""Market-data ingest simulator for the demo: writes ticks into PostgreSQL.

Creates ``market.ticks`` (if missing) in the given database and inserts one row
per symbol every ``interval`` seconds. ``pause()`` stops the writes without
closing anything, so the exporter's freshness series go stale; ``resume()``
brings them back. A database that is down or hung is retried, never fatal.

Entry points: ``TickSimulator(dsn).start()`` / ``pause()`` / ``resume()`` /
``stop()`` inside an event loop, or ``python -m stack.sim_timescale --dsn ...``.
:func:`exporter_config` gives the matching ``timescale`` target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
from typing import Any

import asyncpg

LOG = logging.getLogger("stack.sim_timescale")

SCHEMA = "market"
TABLE = "ticks"
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD")
STATEMENT_TIMEOUT = 5.0

_SETUP = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.{TABLE} (
    time   timestamptz NOT NULL,
    symbol text        NOT NULL,
    bid    float8      NOT NULL,
    ask    float8      NOT NULL
);
CREATE INDEX IF NOT EXISTS {TABLE}_time_idx ON {SCHEMA}.{TABLE} (time DESC);
"""
_INSERT = (
    f"INSERT INTO {SCHEMA}.{TABLE} (time, symbol, bid, ask)"
    " SELECT now(), s, b, b + 0.0002 FROM unnest($1::text[], $2::float8[]) AS u(s, b)"
)


class TickSimulator:
    """Inserts a tick per symbol every ``interval`` seconds until stopped."""

    def __init__(self, dsn: str, interval: float = 0.5, symbols: tuple[str, ...] = SYMBOLS) -> None:
        self._dsn = dsn  # holds a password: never logged
        self.interval = interval
        self.symbols = symbols
        self.ticks_written = 0
        self._prices = {s: 1.0 + random.random() for s in symbols}
        self._running = asyncio.Event()
        self._running.set()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None

    @property
    def paused(self) -> bool:
        """True while writes are paused."""
        return not self._running.is_set()

    async def setup(self) -> None:
        """Create the schema, table and time index (idempotent)."""
        conn = await self._connect()
        await conn.execute(_SETUP, timeout=STATEMENT_TIMEOUT)

    async def start(self) -> None:
        """Create the table and start writing in a background task."""
        await self.setup()
        self._task = asyncio.create_task(self._loop(), name="sim-timescale")

    def pause(self) -> None:
        """Stop writing (the table's newest row starts to age)."""
        self._running.clear()

    def resume(self) -> None:
        """Write again."""
        self._running.set()

    async def stop(self) -> None:
        """Stop the task and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    async def write_once(self) -> None:
        """Insert one tick per symbol."""
        for s in self.symbols:
            self._prices[s] = max(0.01, self._prices[s] * (1 + random.gauss(0, 0.0005)))
        conn = await self._connect()
        await conn.execute(
            _INSERT, list(self.symbols), list(self._prices.values()), timeout=STATEMENT_TIMEOUT
        )
        self.ticks_written += len(self.symbols)

    async def _connect(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=STATEMENT_TIMEOUT)
        return self._conn

    async def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()

    async def _loop(self) -> None:
        while True:
            await self._running.wait()
            try:
                await self.write_once()
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                LOG.warning("tick insert failed; retrying: %s", type(exc).__name__)
                if self._conn is not None:
                    self._conn.terminate()
                    self._conn = None
            await asyncio.sleep(self.interval)


def exporter_config(
    address: str, database: str, password_env: str, sla: str = "5s", name: str = "marketdata"
) -> dict[str, Any]:
    """The ``timescale`` target that watches the simulator's table."""
    return {
        "name": name,
        "address": address,
        "database": database,
        "user": "postgres",
        "password": f"${{{password_env}}}",
        "sslmode": "disable",
        "tables": [
            {
                "name": "ticks",
                "schema": SCHEMA,
                "table": TABLE,
                "time_column": "time",
                "freshness_sla": sla,
            }
        ],
    }


async def _main(args: argparse.Namespace) -> None:
    sim = TickSimulator(args.dsn or os.environ["SIM_TIMESCALE_DSN"], args.interval)
    await sim.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: sim.resume() if sim.paused else sim.pause())
    await stop.wait()
    await sim.stop()


def main() -> None:
    """``python -m stack.sim_timescale [--dsn URL] [--interval S]``; SIGUSR1 pauses/resumes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="libpq URL (default: $SIM_TIMESCALE_DSN)")
    parser.add_argument("--interval", type=float, default=0.5)
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
