"""The compose stack's backups: pg_dump on an interval, with restore drills."""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from exporter.model import parse_host_port

from .backups import write_drill_record, write_manifest
from .sim_timescale import SCHEMA, TABLE

LOG = logging.getLogger("stack.compose")
BACKUP_INTERVAL = 30.0
"""Seconds between two dumps, as in the demo."""
DRILL_EVERY = 6
"""A restore drill every this many dumps, as in the demo."""
KEEP_DUMPS = 20
COMMAND_TIMEOUT = 120.0
"""Deadline of every ``pg_dump``, ``pg_restore`` and ``psql`` run."""


# --- backups -------------------------------------------------------------------


@dataclass(frozen=True)
class PgClient:
    """libpq command-line tools against one server over TCP (password: ``PGPASSWORD``)."""

    host: str
    port: int
    user: str = "postgres"
    database: str = "postgres"

    def args(self) -> list[str]:
        """Host, port and user arguments of every tool."""
        return ["-h", self.host, "-p", str(self.port), "-U", self.user]

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run SQL; returns stdout (unaligned, tuples only)."""
        db = database or self.database
        out = subprocess.run(
            ["psql", *self.args(), "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr.strip()[-500:]}")
        return str(out.stdout)


class ComposeBackups:
    """The demo's backups of the compose TimescaleDB, taken over TCP: ``pg_dump``
    files of the tick schema with the manifests the exporter reads, and restore
    drills (a real restore into a scratch database) leaving their record.

    pgBackRest is left out: it runs on the database's own host, beside its data
    directory, which in compose is another container."""

    def __init__(self, pg: PgClient, root: Path, schema: str = SCHEMA, table: str = TABLE) -> None:
        self.pg = pg
        self.dumps = root / "dumps"
        self.drills = root / "drills"
        self.schema = schema
        self.table = table

    def dump(self, name: str | None = None, manifest: bool = True) -> Path:
        """``pg_dump -Fc`` of the tick schema into ``dumps/`` (renamed into place when
        complete), then its manifest; the dump's path."""
        self.dumps.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6}"
        name = name or f"{self.pg.database}-{stamp}"
        path = self.dumps / f"{name}.dump"
        partial = path.with_name(path.name + ".partial")
        start = time.time()
        with partial.open("wb") as fh:
            out = subprocess.run(
                ["pg_dump", *self.pg.args(), "-Fc", "-n", self.schema, self.pg.database],
                stdout=fh,
                stderr=subprocess.PIPE,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        if out.returncode != 0:
            partial.unlink(missing_ok=True)
            raise RuntimeError(f"pg_dump failed: {out.stderr.decode(errors='replace')[-500:]}")
        partial.replace(path)
        if manifest:
            write_manifest(path, start, time.time())
        return path

    def prune(self, keep: int = KEEP_DUMPS) -> None:
        """Remove all but the newest ``keep`` dumps and their manifests."""
        dumps = sorted(self.dumps.glob("*.dump"), key=lambda p: p.stat().st_mtime)
        for old in dumps[: max(0, len(dumps) - keep)]:
            old.with_name(old.name + ".manifest.json").unlink(missing_ok=True)
            old.unlink(missing_ok=True)

    def drill(self) -> bool:
        """Restore the newest dump into a scratch database, count the ticks, drop it
        and write ``drills/latest.json``; True when the restore succeeded."""
        newest = max(self.dumps.glob("*.dump"), key=lambda p: p.stat().st_mtime)
        scratch = f"drill_{time.time_ns() % 10**9}"
        start = time.time()
        self.pg.psql(f"CREATE DATABASE {scratch} TEMPLATE template0")
        rows: int | None = None
        try:
            restored = subprocess.run(
                ["pg_restore", *self.pg.args(), "-d", scratch, "--no-owner", str(newest)],
                capture_output=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
            ok = restored.returncode == 0
            if ok:
                count = f"SELECT count(*) FROM {self.schema}.{self.table}"
                rows = int(self.pg.psql(count, scratch))
        finally:
            self.pg.psql(f"DROP DATABASE IF EXISTS {scratch}")
        write_drill_record(
            self.drills / "latest.json",
            ok,
            duration=time.time() - start,
            rows=rows,
            checksums=1 if ok else 0,
        )
        return ok

    def prepare(self) -> None:
        """As the demo: a dump whose manifest says it ran a day ago, a fresh dump and
        a drill."""
        older = self.dump(name="seed-full", manifest=False)
        day_ago = time.time() - 86400
        write_manifest(older, day_ago, day_ago + 3)
        self.dump()
        self.drill()

    def run(
        self,
        stop: threading.Event,
        interval: float = BACKUP_INTERVAL,
        drill_every: int = DRILL_EVERY,
        retry: float = 5.0,
    ) -> None:
        """Prepare (retried until the database and the tick schema are there), then a
        dump every ``interval`` seconds and a drill every ``drill_every`` dumps,
        until ``stop`` is set. A failed dump or drill is logged; the next one runs
        on time (the exporter's backup alerts tell the rest)."""
        self.dumps.mkdir(parents=True, exist_ok=True)  # the exporter reads both from the start
        self.drills.mkdir(parents=True, exist_ok=True)
        while not stop.is_set():
            try:
                self.prepare()
                LOG.info("backups: seed dumps and a first drill in %s", self.dumps.parent)
                break
            except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as exc:
                LOG.warning("backups not ready (%s); again in %.0fs", exc, retry)
                stop.wait(retry)
        ticks = 0
        while not stop.wait(interval):
            ticks += 1
            try:
                self.dump()
                self.prune()
                if ticks % drill_every == 0:
                    LOG.info("restore drill: %s", "ok" if self.drill() else "FAILED")
            except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as exc:
                LOG.warning("backup failed: %s", exc)


def run_backups(address: str, root: Path, user: str, database: str) -> None:
    """``backups``: until SIGTERM/SIGINT."""
    host, port = parse_host_port(address)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ComposeBackups(PgClient(host, port, user, database), root).run(stop)
