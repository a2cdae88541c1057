"""Real backups of a stack PostgreSQL: pgBackRest with one stanza, ``pg_dump``
files with the manifests the exporter reads, and restore-drill records.

pgBackRest and pg_dump run as the ``postgres`` user when we are root, like the
server itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .postgres import Postgres, _postgres_bin
from .services import find_binary


def as_postgres() -> dict[str, Any]:
    """Popen arguments that drop to the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("postgres")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _give_to_postgres(path: Path) -> None:
    kw = as_postgres()
    if kw:
        os.chown(path, kw["user"], kw["group"])


def rfc3339(ts: float) -> str:
    """A Unix time as RFC 3339 UTC with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PgBackRest:
    """A pgBackRest repository and one stanza for a running stack PostgreSQL."""

    def __init__(self, pg: Postgres, root: Path, stanza: str = "main") -> None:
        self.pg = pg
        self.stanza = stanza
        self.dir = root / "pgbackrest"
        self.repo = self.dir / "repo"
        self.config = self.dir / "pgbackrest.conf"

    @property
    def command(self) -> list[str]:
        """The program and ``--config`` to run pgBackRest as the database's user."""
        prefix = ["runuser", "-u", "postgres", "--"] if as_postgres() else []
        return [*prefix, find_binary("pgbackrest"), f"--config={self.config}"]

    def setup(self) -> PgBackRest:
        """Write the config, turn on WAL archiving (restarts the server), create the stanza."""
        for d in (self.dir, self.repo, self.dir / "log", self.dir / "lock"):
            d.mkdir(parents=True, exist_ok=True)
            _give_to_postgres(d)
        self.config.write_text(
            "[global]\n"
            f"repo1-path={self.repo}\n"
            "repo1-retention-full=2\n"
            f"log-path={self.dir / 'log'}\n"
            f"lock-path={self.dir / 'lock'}\n"
            "log-level-console=warn\n"
            "start-fast=y\n"
            "compress-type=none\n"
            f"\n[{self.stanza}]\n"
            f"pg1-path={self.pg.data}\n"
            f"pg1-port={self.pg.port}\n"
            f"pg1-socket-path={self.pg.dir}\n"
            "pg1-user=postgres\n"
        )
        archive = f"{' '.join(self.command[-2:])} --stanza={self.stanza} archive-push %p"
        self.pg.psql("ALTER SYSTEM SET archive_mode = on")
        self.pg.psql(f"ALTER SYSTEM SET archive_command = '{archive}'")
        self.pg.stop()
        self.pg.start()
        self.run("stanza-create")
        return self

    def run(self, *args: str, timeout: float = 120) -> str:
        """Run a pgBackRest command for the stanza; returns stdout."""
        out = subprocess.run(
            [*self.command, f"--stanza={self.stanza}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"pgbackrest {' '.join(args)} failed: {out.stderr[-2000:]}")
        return out.stdout

    def backup(self, kind: str = "full") -> None:
        """Take a backup of the given type (full, diff, incr)."""
        self.run("backup", f"--type={kind}")

    def switch_wal(self) -> None:
        """Force a WAL segment switch so the newest segment gets archived."""
        self.pg.psql("SELECT pg_switch_wal()")

    def info(self) -> list[dict[str, Any]]:
        """``pgbackrest info --output=json`` for the stanza."""
        data = json.loads(self.run("--output=json", "info"))
        assert isinstance(data, list)
        return data


def dump_backup(
    pg: Postgres,
    directory: Path,
    database: str = "postgres",
    name: str | None = None,
    kind: str = "full",
    manifest: bool = True,
) -> Path:
    """``pg_dump -Fc`` of ``database`` into ``directory`` plus its manifest; the dump's path."""
    directory.mkdir(parents=True, exist_ok=True)
    name = name or f"{database}-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6}"
    path = directory / f"{name}.dump"
    start = time.time()
    with path.open("wb") as fh:
        subprocess.run(
            [
                _postgres_bin("pg_dump"),
                "-h",
                str(pg.dir),
                "-p",
                str(pg.port),
                "-U",
                pg.user,
                "-Fc",
                database,
            ],
            stdout=fh,
            stderr=subprocess.PIPE,
            check=True,
            timeout=120,
            **as_postgres(),
        )
    finish = time.time()
    if manifest:
        write_manifest(path, start, finish, kind=kind)
    return path


def write_manifest(
    path: Path, start: float, finish: float, kind: str = "full", status: str = "success"
) -> Path:
    """Write ``<file>.manifest.json`` beside ``path`` in the format the exporter reads."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    doc = {
        "format": 1,
        "file": path.name,
        "type": kind,
        "status": status,
        "start": rfc3339(start),
        "finish": rfc3339(finish),
        "size_bytes": path.stat().st_size,
        "checksum": {"algorithm": "sha256", "value": digest.hexdigest()},
    }
    out = path.with_name(path.name + ".manifest.json")
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(out)
    return out


def write_drill_record(
    path: Path,
    ok: bool,
    timestamp: float | None = None,
    duration: float = 0.0,
    rows: int | None = None,
    checksums: int | None = None,
    checksums_failed: int = 0,
) -> Path:
    """Write a restore-drill record in the format the exporter reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "format": 1,
        "timestamp": rfc3339(timestamp if timestamp is not None else time.time()),
        "result": "success" if ok else "failure",
        "duration_seconds": round(duration, 3),
        "checksums_failed": checksums_failed,
    }
    if rows is not None:
        doc["rows_verified"] = rows
    if checksums is not None:
        doc["checksums_verified"] = checksums
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
    return path


def restore_drill(pg: Postgres, dump: Path, record: Path, table: str | None = None) -> bool:
    """A real drill: restore ``dump`` into a scratch database, count rows, write the record."""
    scratch = f"drill_{time.time_ns() % 10**9}"
    start = time.time()
    pg.psql(f"CREATE DATABASE {scratch}")
    try:
        with dump.open("rb") as fh:
            restored = subprocess.run(
                [
                    _postgres_bin("pg_restore"),
                    "-h",
                    str(pg.dir),
                    "-p",
                    str(pg.port),
                    "-U",
                    pg.user,
                    "-d",
                    scratch,
                    "--no-owner",
                ],
                stdin=fh,
                capture_output=True,
                timeout=120,
                check=False,
                **as_postgres(),
            )
        ok = restored.returncode == 0
        rows = int(pg.psql(f"SELECT count(*) FROM {table}", scratch)) if ok and table else None
    finally:
        pg.psql(f"DROP DATABASE IF EXISTS {scratch}")
    write_drill_record(
        record, ok, duration=time.time() - start, rows=rows, checksums=1 if ok else 0
    )
    return ok
