"""Fixtures shared by the TimescaleDB/PostgreSQL tests against a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stack import Postgres

from ...helpers import service_root


@pytest.fixture
def superuser_password(postgres_server: Postgres, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session cluster's superuser password, in ``TS_TEST_PASSWORD``."""
    monkeypatch.setenv("TS_TEST_PASSWORD", postgres_server.password)
    return postgres_server.password


@pytest.fixture(scope="package")
def own_postgres() -> Iterator[Postgres]:
    """A cluster of these tests' own, for tests that stop and hang it, or clone it.

    It lives in a ``service_root``, so that it can restart however pytest runs.
    """
    with service_root("ts-faults") as root:
        server = Postgres(root).start()
        yield server
        server.stop()
