"""The compose stack's traffic: FIX, Kafka, Redis and TimescaleDB writers, restarted on end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg

from exporter.model import parse_host_port

from . import sim_fix
from .sim_hypertable import HYPERTABLE, HypertableTicks
from .sim_kafka import KafkaSimulator
from .sim_redis import RedisTraffic
from .sim_timescale import SCHEMA, TABLE, TickSimulator

LOG = logging.getLogger("stack.compose")
TICK_INTERVAL = 0.5
"""Seconds between two tick inserts, as in the demo."""
HYPERTABLE_DATABASE = "tsdb"
"""The hypertable's database, as the demo's hypertable target names it."""
RETRY_FIRST, RETRY_MAX = 1.0, 30.0
"""A failed simulator runs again after this delay, doubling up to the maximum."""


# --- traffic -------------------------------------------------------------------


async def supervise(
    name: str,
    once: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    delays: tuple[float, float] = (RETRY_FIRST, RETRY_MAX),
) -> None:
    """Run ``once`` again whenever it ends or fails, until ``stop`` is set. A failure
    is logged and retried after a delay that doubles up to ``delays[1]`` (back to
    ``delays[0]`` after a run that lasted a minute)."""
    first, longest = delays
    delay = first
    while not stop.is_set():
        started = time.monotonic()
        try:
            await once()
            outcome = "ended"
        except Exception as exc:  # a simulator's failure is logged and retried
            outcome = f"failed: {type(exc).__name__}: {exc}"
        if stop.is_set():
            return
        if time.monotonic() - started > 60:
            delay = first
        LOG.warning("%s %s; again in %.0fs", name, outcome, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, longest)


async def fix_once(address: str, stop: asyncio.Event) -> None:
    """One FIX session with the acceptor (orders, heartbeats, test requests) until
    ``stop`` or a logout."""
    stats = await sim_fix.run(address, stop=stop)
    LOG.info("fix session ended: %d orders sent, %d fills", stats.orders_sent, stats.fills)


async def kafka_once(bootstrap: str, stop: asyncio.Event) -> None:
    """The demo's producer and consumer groups (keeping up, lagging, stopped)."""
    sim = KafkaSimulator(bootstrap)
    try:
        await sim.start()
        LOG.info("kafka traffic: topics %s, groups %s", sim.topics, sorted(sim.groups))
        await stop.wait()
    finally:
        await sim.stop()


async def redis_once(address: str, stop: asyncio.Event) -> None:
    """Heartbeat keys and the order stream until ``stop``; raises when Redis fails."""
    traffic = RedisTraffic(address)
    traffic.start()
    writer = traffic._task  # the writing loop: it ends with the error when Redis fails
    stopping = asyncio.ensure_future(stop.wait())
    failure: BaseException | None = None
    try:
        assert writer is not None
        await asyncio.wait({writer, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if writer.done() and not writer.cancelled():
            failure = writer.exception()
    finally:
        stopping.cancel()
        await traffic.stop()
    if failure is not None:
        raise failure
    if not stop.is_set():
        raise RuntimeError("the Redis traffic stopped")


async def ticks_once(dsn: str, stop: asyncio.Event) -> None:
    """Ticks into ``market.ticks`` (created if missing) until ``stop``; the
    simulator retries failed inserts itself."""
    sim = TickSimulator(dsn, interval=TICK_INTERVAL)
    try:
        await sim.start()
        LOG.info("ticks: writing %s.%s every %.1fs", SCHEMA, TABLE, TICK_INTERVAL)
        await stop.wait()
    finally:
        await sim.stop()


async def hypertable_once(dsn: str, stop: asyncio.Event) -> None:
    """Ticks into the ``market.ticks`` hypertable (set up if missing, its database
    created if missing) until ``stop``; the server runs the compression policy."""
    await create_database(dsn)
    sim = HypertableTicks(dsn)
    try:
        await sim.start()
        LOG.info("hypertable: writing %s every %.1fs", HYPERTABLE, sim.interval)
        await stop.wait()
    finally:
        await sim.stop()


async def create_database(dsn: str) -> None:
    """Create the database ``dsn`` names, through the server's ``postgres`` database,
    unless it exists (a server that serves one database whatever is asked, as PGlite
    does, always has it)."""
    try:
        conn = await asyncpg.connect(dsn, ssl=False, statement_cache_size=0, timeout=30)
    except asyncpg.InvalidCatalogNameError:
        parts = urlsplit(dsn)
        name = parts.path.lstrip("/")
        admin = await asyncpg.connect(
            parts._replace(path="/postgres").geturl(), ssl=False, timeout=30
        )
        try:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # created meanwhile
                await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close(timeout=5)
        LOG.info("created database %s", name)
    else:
        await conn.close(timeout=5)


def postgres_dsn(address: str, user: str, database: str) -> str:
    """A libpq URL without a password (asyncpg reads ``PGPASSWORD``)."""
    host, port = parse_host_port(address)
    return f"postgresql://{user}@{host}:{port}/{database}"


async def run_traffic(
    fix: str | None,
    kafka: str | None,
    redis: str | None,
    postgres: str | None,
    user: str = "postgres",
    database: str = "postgres",
    stop: asyncio.Event | None = None,
    timescale: str | None = None,
    timescale_database: str = HYPERTABLE_DATABASE,
) -> None:
    """Every simulator given an address, each under :func:`supervise`, until
    ``stop`` is set (or, without one, until SIGTERM/SIGINT)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    event = stop
    jobs: list[tuple[str, Callable[[], Awaitable[None]]]] = []
    if fix:
        jobs.append((f"fix {fix}", lambda: fix_once(fix, event)))
    if kafka:
        jobs.append((f"kafka {kafka}", lambda: kafka_once(kafka, event)))
    if redis:
        jobs.append((f"redis {redis}", lambda: redis_once(redis, event)))
    if postgres:
        dsn = postgres_dsn(postgres, user, database)
        jobs.append((f"ticks {postgres}", lambda: ticks_once(dsn, event)))
    if timescale:
        hypertable = postgres_dsn(timescale, user, timescale_database)
        jobs.append((f"hypertable {timescale}", lambda: hypertable_once(hypertable, event)))
    if not jobs:
        raise ValueError(
            "no simulator to run: give --fix, --kafka, --redis, --postgres or --timescale"
        )
    await asyncio.gather(*(supervise(name, once, event) for name, once in jobs))
