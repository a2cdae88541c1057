"""The demo's backup simulator: all three backup sources come up with real data."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stack import Postgres
from stack.sim_backups import BackupSim

from .helpers import Running, Series, eventually, scrape_until, service_root, value

Factory = Callable[..., Any]
TARGETS = ("pg-dumps", "pg-pgbackrest", "pg-restore-drill")


async def test_demo_backups_feed_all_three_sources(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    with service_root("sim-backups") as root:
        await _feed_all_three_sources(root, exporter_factory)


async def _feed_all_three_sources(tmp_path: Path, exporter_factory: Factory) -> None:
    pg = Postgres(tmp_path).start()
    try:
        sim = BackupSim(pg, tmp_path).prepare()
        first = len(list(sim.dumps.glob("*.dump")))
        sim.tick()
        assert len(list(sim.dumps.glob("*.dump"))) == first + 1
        run: Running = await exporter_factory(sim.exporter_config(interval="2s", timeout="1500ms"))

        def all_up(m: Series) -> bool:
            return all(value(m, "tradeops_up", kind="backups", target=t) == 1 for t in TARGETS)

        # each target runs on its own schedule: read the very scrape where all three are up
        m = await scrape_until(run, all_up, timeout=20)
        now = time.time()
        for t in ("pg-dumps", "pg-pgbackrest"):
            rpo = value(m, "tradeops_backup_rpo_seconds", target=t)
            assert rpo is not None and 0 <= rpo < 300, t
        assert value(
            m, "tradeops_backup_retention_window_backups", target="pg-dumps", type="full"
        ) == (first + 1)
        assert value(m, "tradeops_backup_checksum_ok", target="pg-dumps") == 1
        drill = value(
            m,
            "tradeops_backup_restore_drill_last_success_timestamp_seconds",
            target="pg-restore-drill",
        )
        assert drill is not None and now - 300 < drill <= now
        sim.corrupt_newest()
        sim.drill(ok=False)

        async def alarms() -> bool:
            m = await run.scrape()
            return (
                value(m, "tradeops_backup_checksum_ok", target="pg-dumps") == 0
                and value(
                    m, "tradeops_backup_restore_drill_last_success", target="pg-restore-drill"
                )
                == 0
            )

        await eventually(alarms, timeout=20)
        loop = asyncio.create_task(sim.run(interval=0.1, pgbackrest_every=1, drill_every=1))

        async def healed() -> bool:
            m = await run.scrape()
            return (
                value(m, "tradeops_backup_checksum_ok", target="pg-dumps") == 1
                and value(
                    m, "tradeops_backup_restore_drill_last_success", target="pg-restore-drill"
                )
                == 1
                # one incremental backup per loop: a second may land before the drill
                # target's next run, and the count never comes back to exactly 1
                and (
                    value(
                        m,
                        "tradeops_backup_retention_window_backups",
                        target="pg-pgbackrest",
                        type="incr",
                    )
                    or 0
                )
                >= 1
            )

        try:
            await eventually(healed, timeout=60)
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    finally:
        pg.stop()
