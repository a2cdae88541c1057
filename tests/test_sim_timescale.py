"""The demo's tick simulator against the stack's PostgreSQL, seen through the exporter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from stack import Postgres
from stack.sim_timescale import TickSimulator, exporter_config

from .fixtures_timescale import create_database
from .helpers import Running, eventually, value

Factory = Callable[..., Any]
TICKS = {"target": "marketdata", "table": "ticks"}


async def test_pause_makes_the_table_stale_and_resume_fresh(
    postgres_server: Postgres, exporter_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = postgres_server
    create_database(pg, "sim_ticks")
    monkeypatch.setenv("SIM_PG_PASSWORD", pg.password)
    sim = TickSimulator(pg.dsn("sim_ticks"), interval=0.2)
    await sim.start()
    try:
        target = exporter_config(pg.address, "sim_ticks", "SIM_PG_PASSWORD", sla="1s")
        target.update(interval="300ms", timeout="250ms")
        run: Running = await exporter_factory(yaml.safe_dump({"timescale": [target]}))

        async def within_sla(expected: float) -> bool:
            m = await run.scrape()
            return value(m, "tradeops_timescale_table_within_sla", **TICKS) == expected

        await eventually(lambda: within_sla(1), timeout=10)
        assert sim.ticks_written > 0
        sim.pause()
        written = sim.ticks_written
        await eventually(lambda: within_sla(0), timeout=10)
        # at most the one write in flight when pausing completed: none started after
        assert written <= sim.ticks_written <= written + len(sim.symbols)
        sim.resume()
        await eventually(lambda: within_sla(1), timeout=10)
        sim.pause()

        async def counted() -> bool:  # once a write in flight when pausing completes
            rows = int(pg.psql("SELECT count(*) FROM market.ticks", "sim_ticks"))
            return rows == sim.ticks_written

        await eventually(counted, timeout=10, step=0.2)
    finally:
        await sim.stop()
