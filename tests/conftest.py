"""Fixtures: real services from the stack on free loopback ports, and the exporter."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from stack import PgBouncer, Postgres, Redis, Tansu, TimescaleLite
from stack.kafka_cluster import TansuBroker, TansuCluster, TLSTansu
from stack.pgbouncer import PoolMode
from stack.redis_ha import RedisCluster, SentinelGroup

from .fixtures_eventbus import Certs, make_certs
from .helpers import FIGURES, Running, report, service_root, start_exporter
from .hostile import fault_matrix


@pytest.fixture(scope="session")
def stack_root() -> Iterator[Path]:
    """A directory for the services of this test session (see ``service_root``)."""
    with service_root("test-stack") as root:
        yield root


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Redis]:
    """A fresh redis-server for one test (tests may stop, kill or pause it)."""
    server = Redis(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(stack_root: Path) -> Iterator[Postgres]:
    """One PostgreSQL cluster shared by the session (tests create their own databases)."""
    server = Postgres(stack_root).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tansu_server(stack_root: Path) -> Iterator[Tansu]:
    """One Kafka-protocol broker shared by the session (tests use their own topics)."""
    server = Tansu(stack_root).start()
    yield server
    server.stop()


@pytest.fixture
async def exporter_factory(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Start exporters in-process from YAML text; all are stopped after the test."""
    running: list[Running] = []

    async def start(config_text: str, **kwargs: object) -> Running:
        r = await start_exporter(config_text, tmp_path, **kwargs)  # type: ignore[arg-type]
        running.append(r)
        return r

    yield start
    for r in running:
        await r.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures tests reported (dashboards live, the detection table, the fault matrix)."""
    if FIGURES:
        terminalreporter.section("figures")
        for text in FIGURES:
            terminalreporter.write_line(text)
    if matrix := fault_matrix():
        terminalreporter.section("fault matrix: kind x hostile peer (or file) -> reason")
        for line in matrix:
            terminalreporter.write_line(line)


REDIS_HA_PASSWORD = "ha-monitor-pw"
"""The password of the Sentinel group's and the cluster's servers (and Sentinels)."""


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A primary, its replica and three Sentinels (quorum 2, down after 1 s), all
    with ``REDIS_HA_PASSWORD``, for one test (tests may pause or stop any of them)."""
    group = SentinelGroup(tmp_path / "sentinel-group", password=REDIS_HA_PASSWORD)
    try:
        yield group.start()
    finally:
        group.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A Redis Cluster of three primaries (node timeout 1 s) with ``REDIS_HA_PASSWORD``,
    for one test (tests may pause or stop its nodes)."""
    cluster = RedisCluster(tmp_path / "redis-cluster", password=REDIS_HA_PASSWORD)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def timescale_lite(stack_root: Path) -> Iterator[TimescaleLite]:
    """The stack's real TimescaleDB (PGlite, TimescaleDB 2.23, one client at a time),
    shared by the session: tests use schemas of their own and never drop the
    extension here (PGlite's one session cannot create it again)."""
    start = time.monotonic()
    server = TimescaleLite(stack_root).start()
    report(f"timescale (PGlite): start to first query {time.monotonic() - start:.1f} s")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka_certs(stack_root: Path) -> Certs:
    """A CA and a certificate for 127.0.0.1 it signed, for the TLS brokers."""
    directory = stack_root / "kafka-certs"
    directory.mkdir(parents=True, exist_ok=True)
    return make_certs(directory)


@pytest.fixture(scope="session")
def tansu_cluster(stack_root: Path) -> Iterator[TansuCluster]:
    """Three real Tansu brokers shown as one cluster (``stack.kafka_cluster``), shared
    by the session: tests use their own topics and groups, and put back any broker
    they stop or pause."""
    cluster = TansuCluster(stack_root / "tansu-cluster").start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def tls_tansu(stack_root: Path, kafka_certs: Certs) -> Iterator[TLSTansu]:
    """A real Tansu reached over TLS only (certificate signed by ``kafka_certs.ca``)."""
    server = TLSTansu(stack_root / "tansu-tls", kafka_certs.cert, kafka_certs.key).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sasl_tansu(stack_root: Path) -> Iterator[TansuBroker]:
    """A real Tansu that requires a SCRAM login and (as every Tansu 0.6) knows no user."""
    server = TansuBroker(stack_root / "tansu-sasl", authentication=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_sasl_tansu(stack_root: Path, kafka_certs: Certs) -> Iterator[TLSTansu]:
    """``sasl_tansu`` reached over TLS only."""
    root = stack_root / "tansu-tls-sasl"
    server = TLSTansu(root, kafka_certs.cert, kafka_certs.key, authentication=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pgbouncers(postgres_server: Postgres, stack_root: Path) -> Iterator[dict[PoolMode, PgBouncer]]:
    """PgBouncer (Debian's 1.18, stock settings, the superuser's login) in front of
    ``postgres_server``, one per pool mode: session, transaction and statement. Its
    pools are per database and user: tests that count server connections use a
    database of their own."""
    modes: tuple[PoolMode, ...] = ("session", "transaction", "statement")
    started: dict[PoolMode, PgBouncer] = {}
    try:
        for mode in modes:
            started[mode] = PgBouncer(stack_root, postgres_server, mode).start()
        yield started
    finally:
        for bouncer in started.values():
            bouncer.stop()
