"""Fixtures for the backup tests: a PostgreSQL of their own with WAL archiving to a
real pgBackRest stanza (one full backup taken), and some data worth dumping."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import Postgres
from stack.backups import PgBackRest

from .helpers import service_root


@pytest.fixture(scope="module")
def archived_pg() -> Iterator[tuple[Postgres, PgBackRest]]:
    """PostgreSQL with archive_mode on and a pgBackRest stanza holding one full backup.

    Its own cluster: turning on archiving restarts the server, which the shared
    session cluster must not suffer.
    """
    with service_root("backups") as root:
        yield from _archived(root)


def _archived(root: Path) -> Iterator[tuple[Postgres, PgBackRest]]:
    pg = Postgres(root).start()
    try:
        pg.psql(
            "CREATE TABLE ticks (ts timestamptz NOT NULL, px numeric);"
            "INSERT INTO ticks SELECT now() - i * interval '1 second', i"
            " FROM generate_series(1, 20000) i"
        )
        rest = PgBackRest(pg, root).setup()
        rest.backup("full")
        rest.switch_wal()
        yield pg, rest
    finally:
        pg.stop()


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    """An empty directory for dumps and manifests."""
    d = tmp_path / "dumps"
    d.mkdir()
    return d
