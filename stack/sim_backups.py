"""Backups for the demo: real pg_dump files with manifests, a restore-drill record
made by a real restore, and a pgBackRest stanza with a full backup, all against
one stack PostgreSQL, so the exporter's three backup sources have data.

Entry point::

    sim = BackupSim(pg, root).prepare()     # blocking; restarts pg once (archiving)
    # or: sim.archive() (the restart) first, then create the data, then prepare(),
    # so the first drill restores it (table= : the table each drill counts)
    config_yaml += sim.exporter_config()    # a ``backups:`` section, three targets
    task = asyncio.create_task(sim.run(interval=60.0))   # a dump (and WAL switch) every
    ...                                                  # interval, pgBackRest incr and
    task.cancel()                                        # drills now and then
    sim.corrupt_newest(); sim.drill(ok=False)            # to show the alerts firing
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

from .backups import PgBackRest, dump_backup, restore_drill, write_drill_record, write_manifest
from .postgres import Postgres


class BackupSim:
    """Prepares and refreshes the demo's backups."""

    def __init__(
        self,
        pg: Postgres,
        root: Path,
        database: str = "postgres",
        keep: int = 20,
        table: str | None = None,
    ) -> None:
        self.pg = pg
        self.dir = root / "backups"
        self.dumps = self.dir / "dumps"
        self.drills = self.dir / "drills"
        self.database = database
        self.keep = keep
        self.table = table
        """The table (``schema.table``) each drill counts the rows of in the restored
        database (``rows_verified``); none counted when None."""
        self.pgbackrest = PgBackRest(pg, self.dir)
        self._archiving = False

    def archive(self) -> BackupSim:
        """Turn on WAL archiving and create the pgBackRest stanza, once: restarts
        PostgreSQL (do it before anyone connects)."""
        if not self._archiving:
            self.pgbackrest.setup()
            self._archiving = True
        return self

    def prepare(self) -> BackupSim:
        """Turn on archiving (unless :meth:`archive` did), take a pgBackRest full
        backup, two dumps and one drill."""
        self.dumps.mkdir(parents=True, exist_ok=True)
        self.archive()
        self.pgbackrest.backup("full")
        older = dump_backup(self.pg, self.dumps, self.database, name="seed-full", manifest=False)
        day_ago = time.time() - 86400
        write_manifest(older, day_ago, day_ago + 3)
        newest = self.tick()
        restore_drill(self.pg, newest, self.drills / "latest.json", table=self.table)
        return self

    def tick(self) -> Path:
        """One more dump with its manifest, a WAL switch, and pruning of old dumps."""
        path = dump_backup(self.pg, self.dumps, self.database)
        with contextlib.suppress(Exception):
            self.pgbackrest.switch_wal()
        dumps = sorted(self.dumps.glob("*.dump"), key=lambda p: p.stat().st_mtime)
        for old in dumps[: max(0, len(dumps) - self.keep)]:
            old.with_name(old.name + ".manifest.json").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
        return path

    def corrupt_newest(self) -> Path:
        """Flip one byte in the newest dump (same size): its checksum check fails."""
        newest = max(self.dumps.glob("*.dump"), key=lambda p: p.stat().st_mtime)
        data = bytearray(newest.read_bytes())
        data[len(data) // 2] ^= 0xFF
        newest.write_bytes(bytes(data))
        return newest

    def drill(self, ok: bool = True) -> None:
        """A restore drill of the newest dump (a real one), or a failed drill record."""
        record = self.drills / "latest.json"
        if not ok:
            write_drill_record(record, False, duration=1.0, checksums=0, checksums_failed=1)
            return
        newest = max(self.dumps.glob("*.dump"), key=lambda p: p.stat().st_mtime)
        restore_drill(self.pg, newest, record, table=self.table)

    async def run(
        self, interval: float = 60.0, pgbackrest_every: int = 10, drill_every: int = 30
    ) -> None:
        """Until cancelled: a dump every ``interval`` seconds, a pgBackRest incremental
        backup every ``pgbackrest_every`` dumps and a restore drill every ``drill_every``."""
        ticks = 0
        while True:
            await asyncio.sleep(interval)
            ticks += 1
            await asyncio.to_thread(self.tick)
            if ticks % pgbackrest_every == 0:
                await asyncio.to_thread(self.pgbackrest.backup, "incr")
            if ticks % drill_every == 0:
                await asyncio.to_thread(self.drill)

    def exporter_config(self, interval: str = "15s", timeout: str = "10s") -> str:
        """The exporter's ``backups:`` section for the three sources."""
        command = json.dumps(self.pgbackrest.command)
        return (
            "backups:\n"
            f"  - name: pg-dumps\n    interval: {interval}\n    timeout: {timeout}\n"
            f"    retention: 48h\n"
            f"    source: {{type: directory, path: {self.dumps}, recovery_point: start}}\n"
            f"  - name: pg-pgbackrest\n    interval: {interval}\n    timeout: {timeout}\n"
            f"    source: {{type: pgbackrest, stanza: {self.pgbackrest.stanza}, "
            f"command: {command}, repo_path: {self.pgbackrest.repo}}}\n"
            f"  - name: pg-restore-drill\n    interval: {interval}\n    timeout: {timeout}\n"
            f"    source: {{type: restore_drill, path: {self.drills}}}\n"
        )
