"""Connections against the stack's real PostgreSQL and peers that are not it:
each failure's reason (auth, config, protocol, refused, timeout), recovery, and
the connections' event loop and budget.

The tests that stop and SIGSTOP a server do it to a cluster of their own
(``own_postgres``).
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
import pytest

from exporter.kinds.timescale import KIND as TIMESCALE
from exporter.kinds.timescale.client import classify
from exporter.kinds.timescale.config import TimescaleTarget
from exporter.kinds.timescale.probe import TimescaleState
from exporter.scheduler import run_probe
from stack import Postgres

from ...fixtures_timescale import KIND, Factory, db_config, errors, holds, up
from ...helpers import Running, eventually, value, with_label


async def test_wrong_password_is_auth_and_never_shown(
    postgres_server: Postgres,
    exporter_factory: Factory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "Wr0ng-pa55word-" + postgres_server.password[::-1]
    monkeypatch.setenv("TS_WRONG_PASSWORD", wrong)
    caplog.set_level(logging.DEBUG)
    run: Running = await exporter_factory(
        db_config(postgres_server, "postgres", password_env="TS_WRONG_PASSWORD")
    )
    await eventually(holds(run, lambda m: errors(m, "auth") >= 1), timeout=5)
    _, body, _ = await run.get("/metrics")
    m = await run.scrape()
    assert up(m) == 0
    assert errors(m, "refused") == 0 and errors(m, "other") == 0
    assert with_label(m, "tradeops_timescale_info") == {}
    assert wrong not in body
    assert any("auth" in str(getattr(r, "fields", "")) for r in caplog.records)
    for record in caplog.records:
        assert wrong not in record.getMessage()
        assert wrong not in str(getattr(record, "fields", ""))


async def test_missing_database_is_config(
    postgres_server: Postgres, exporter_factory: Factory, superuser_password: str
) -> None:
    run: Running = await exporter_factory(db_config(postgres_server, "no_such_database"))
    await eventually(holds(run, lambda m: errors(m, "config") >= 1), timeout=5)
    assert up(await run.scrape()) == 0


async def test_garbage_on_the_port_is_protocol(
    exporter_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\x00\xff" * 64)
        await writer.drain()
        writer.close()

    monkeypatch.setenv("TS_TEST_PASSWORD", "irrelevant")
    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        run: Running = await exporter_factory(f"""
timescale:
  - {{name: db, address: "127.0.0.1:{port}", database: d, user: u, sslmode: disable,
      password: "${{TS_TEST_PASSWORD}}", interval: 1s, timeout: 500ms}}
""")
        await eventually(holds(run, lambda m: errors(m, "protocol") >= 1), timeout=5)
        m = await run.scrape()
        assert up(m) == 0 and errors(m, "other") == 0


async def test_stopped_server_is_refused_then_recovers(
    own_postgres: Postgres, exporter_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = own_postgres
    monkeypatch.setenv("TS_TEST_PASSWORD", pg.password)
    run: Running = await exporter_factory(db_config(pg, "postgres"))
    await eventually(holds(run, lambda m: up(m) == 1))
    pg.stop()
    try:
        # the first run after the stop may fail otherwise (its pooled connection is
        # cut); the next one, an interval later, is refused
        await eventually(holds(run, lambda m: errors(m, "refused") >= 1), timeout=10)
        m = await run.scrape()
        assert up(m) == 0
        assert with_label(m, "tradeops_timescale_connections") == {}
        assert value(m, "tradeops_probe_last_success_timestamp_seconds", **KIND) is not None
    finally:
        pg.start()
    await eventually(holds(run, lambda m: up(m) == 1), timeout=10)
    assert with_label(await run.scrape(), "tradeops_timescale_connections") != {}


async def test_hung_server_times_out_at_the_deadline_then_recovers(
    own_postgres: Postgres, exporter_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = own_postgres
    monkeypatch.setenv("TS_TEST_PASSWORD", pg.password)
    run: Running = await exporter_factory(db_config(pg, "postgres", interval="1s", timeout="500ms"))
    await eventually(holds(run, lambda m: up(m) == 1))
    baseline_tasks = len(asyncio.all_tasks())
    pg.pause()
    try:
        # the first run hangs on a pooled connection, later ones while connecting
        await eventually(holds(run, lambda m: errors(m, "timeout") >= 2), timeout=8)
        m = await run.scrape()
        assert up(m) == 0
        duration = value(m, "tradeops_probe_duration_seconds", **KIND)
        assert duration is not None and 0.45 < duration < 0.9
        worst = 0.0
        for _ in range(20):
            start = time.perf_counter()
            await run.scrape()
            worst = max(worst, time.perf_counter() - start)
        assert worst < 0.1, f"/metrics took {worst:.3f}s while the database hangs"
    finally:
        pg.resume()
    await eventually(holds(run, lambda m: up(m) == 1), timeout=10)
    await asyncio.sleep(0.5)
    assert len(asyncio.all_tasks()) <= baseline_tasks + 1, "tasks leaked by timed-out runs"


async def test_pooled_connections_keep_the_running_loop(
    postgres_server: Postgres, superuser_password: str
) -> None:
    """The budget's loop proxy is for connecting only: asyncpg finds a connection's
    running task by its loop (``asyncio.current_task(loop)``), so the connection must
    hold the real one. Pins the connection class's reliance on asyncpg's constructor."""
    target = TimescaleTarget.model_validate(
        {
            "name": "db",
            "address": postgres_server.address,
            "database": "postgres",
            "user": "postgres",
            "password": "${TS_TEST_PASSWORD}",
            "sslmode": "disable",
            "interval": 2.0,
            "timeout": 1.0,
        }
    )
    state = TimescaleState(target)
    try:
        assert (await run_probe(TIMESCALE, target, state, target.timeout_s)).ok
        pool = await state.pool()
        async with pool.acquire() as conn:
            assert conn._con._loop is asyncio.get_running_loop()
        assert state.budget.used > 0  # and what it received was charged
    finally:
        await state.aclose()


def _caused_by(cause: BaseException) -> BaseException:
    """A connection asyncpg reports closed, with PgBouncer's error as the cause."""
    exc = ConnectionResetError("connection was closed in the middle of operation")
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (asyncpg.InvalidPasswordError("password authentication failed"), "auth"),
        (asyncpg.InsufficientPrivilegeError("permission denied"), "auth"),
        (asyncpg.InvalidCatalogNameError('database "x" does not exist'), "config"),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), "timeout"),
        (asyncpg.TooManyConnectionsError("too many clients"), "refused"),
        (asyncpg.InvalidSQLStatementNameError('prepared statement "s" does not exist'), "protocol"),
        (asyncpg.UndefinedTableError('relation "t" does not exist'), "protocol"),
        (asyncpg.DivisionByZeroError("division by zero"), "other"),
        (asyncpg.ProtocolViolationError("no such database: x"), "config"),
        (asyncpg.ProtocolViolationError("odd"), "protocol"),  # 08P01 from PostgreSQL
        (_caused_by(asyncpg.ProtocolViolationError("login rejected")), "auth"),
        (_caused_by(asyncpg.ProtocolViolationError("server login has been failing")), "refused"),
        (asyncpg.InterfaceError("cannot make sense of it"), "protocol"),
        (ConnectionResetError(), "protocol"),
        (OSError("Multiple exceptions: Connect call failed, refused"), "refused"),
        (KeyError("x"), None),  # the framework's defaults decide
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_classify(exc: BaseException, reason: str | None) -> None:
    assert classify(exc) == reason
