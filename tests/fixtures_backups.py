"""Fixtures for the backup tests: a PostgreSQL of their own with WAL archiving to a
real pgBackRest stanza (one full backup taken), and some data worth dumping."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import Postgres
from stack.backups import PgBackRest


@pytest.fixture(scope="module")
def archived_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Postgres, PgBackRest]]:
    """PostgreSQL with archive_mode on and a pgBackRest stanza holding one full backup.

    Its own cluster: turning on archiving restarts the server, which the shared
    session cluster must not suffer.
    """
    root = tmp_path_factory.mktemp("backups")
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
