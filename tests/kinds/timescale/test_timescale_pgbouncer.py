"""The TimescaleDB/PostgreSQL probe through PgBouncer (Debian's 1.18, stock settings:
no ``ignore_startup_parameters``) in front of the stack's real PostgreSQL.

PgBouncer refuses every startup parameter it does not track, so the probe sends
only ``application_name`` at startup and sets its limits per run, with ``SET
LOCAL`` in the run's read-only transaction. These tests show that the series are
the ones a direct connection gives, that the limits hold through PgBouncer and
leave nothing behind on a server connection it shares between clients, what
named statements do under transaction pooling, and the reasons of PgBouncer's own
errors. They drive ``run_probe`` directly: no scheduler, no waiting for intervals.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from exporter.kinds.timescale import KIND as TIMESCALE
from exporter.kinds.timescale import metrics as M
from exporter.kinds.timescale.config import TimescaleTarget
from exporter.kinds.timescale.probe import TimescaleState
from exporter.probe import Sample
from exporter.scheduler import RunOutcome, run_probe
from stack import PgBouncer, Postgres, TimescaleLite
from stack.pgbouncer import PoolMode

from ...fixtures_timescale import (
    LITE_PASSWORD_ENV,
    create_database,
    install_mirror,
    lite_target,
)
from ...helpers import eventually, service_root

PASSWORD_ENV = "TS_PGB_PASSWORD"
Series = dict[tuple[str, tuple[str, ...]], float]

VOLATILE = {
    f.name
    for f in (
        M.ROUNDTRIP,
        M.CONNECTIONS,  # PgBouncer's own server connections are idle client backends
        M.OLDEST_TRANSACTION,
        M.OLDEST_IDLE_IN_TRANSACTION,
        M.DATABASE_SIZE,
        M.XID_AGE,
        M.COMMITS,
        M.ROLLBACKS,
    )
}
"""Series whose values change from run to run (the names and labels do not)."""


@pytest.fixture
def superuser(postgres_server: Postgres, monkeypatch: pytest.MonkeyPatch) -> Postgres:
    """The session's cluster, its superuser's password in ``PASSWORD_ENV``."""
    monkeypatch.setenv(PASSWORD_ENV, postgres_server.password)
    return postgres_server


def _target(address: str, database: str, **fields: Any) -> TimescaleTarget:
    return TimescaleTarget.model_validate(
        {
            "name": "db",
            "address": address,
            "database": database,
            "user": "postgres",
            "password": f"${{{PASSWORD_ENV}}}",
            "sslmode": "disable",
            "interval": 2.0,
            "timeout": 1.0,
            **fields,
        }
    )


async def _runs(target: TimescaleTarget, n: int) -> list[RunOutcome]:
    """``n`` runs on one state (the first opens the connection, the next reuse it)."""
    state = TimescaleState(target)
    try:
        return [await run_probe(TIMESCALE, target, state, target.timeout_s) for _ in range(n)]
    finally:
        await state.aclose()


def _series(outcome: RunOutcome) -> Series:
    return {(s.family.name, s.labels): s.value for s in outcome.samples if isinstance(s, Sample)}


def _statement_cache(mode: PoolMode | None) -> dict[str, Any]:
    """Named statements directly (``None``) and in session mode, not where PgBouncer
    shares server connections (see test_named_statements_under_transaction_pooling)."""
    return {"statement_cache": mode in (None, "session")}


SERIES_DB = "ts_pgb_series"
SERIES_TABLES = [
    {"name": "ticks", "table": "ticks"},
    {"name": "empty", "table": "empty"},
    {"name": "gone", "table": "no_such_table"},  # fails: the run's transaction goes on
]


@pytest.fixture(scope="module")
def series_db(postgres_server: Postgres) -> str:
    """Watched tables and the mirror of the TimescaleDB views (hypertables, jobs)."""
    pg = postgres_server
    create_database(pg, SERIES_DB)
    install_mirror(pg, SERIES_DB, "postgres")
    pg.psql(
        """
        CREATE TABLE public.ticks (time timestamptz NOT NULL);
        CREATE INDEX ON public.ticks (time);
        INSERT INTO public.ticks VALUES ('2026-01-02 03:04:05+00');
        CREATE TABLE public.empty (time timestamptz);
        INSERT INTO timescaledb_information.hypertables VALUES
          ('public', 'ticks', 'postgres', 1, 12, true, NULL);
        INSERT INTO timescaledb_information.jobs (job_id, application_name, proc_schema,
            proc_name, scheduled, next_start, hypertable_schema, hypertable_name) VALUES
          (1000, 'Compression Policy [1000]', '_timescaledb_functions',
           'policy_compression', true, '2026-11-24 00:00:00+00', 'public', 'ticks');
        INSERT INTO timescaledb_information.job_stats VALUES
          ('public', 'ticks', 1000, '2026-11-23 00:00:00+00', '2026-11-23 00:00:03+00',
           'Success', 'Scheduled', '3 seconds', '2026-11-24 00:00:00+00', 7, 7, 0);
        """,
        SERIES_DB,
    )
    return SERIES_DB


@pytest.mark.parametrize("mode", ["session", "transaction"])
async def test_the_same_series_as_direct(
    mode: PoolMode, pgbouncers: dict[PoolMode, PgBouncer], superuser: Postgres, series_db: str
) -> None:
    """Through PgBouncer (sslmode prefer: it answers "no TLS") the probe reports every
    series a direct connection gives, with the same values where they do not move."""
    direct = await _runs(_target(superuser.address, series_db, tables=SERIES_TABLES), 2)
    pooled_target = _target(
        pgbouncers[mode].address,
        series_db,
        tables=SERIES_TABLES,
        sslmode="prefer",
        **_statement_cache(mode),
    )
    pooled = await _runs(pooled_target, 2)
    for outcome in direct + pooled:
        assert outcome.ok, outcome.error
    want, got = _series(direct[-1]), _series(pooled[-1])
    assert got.keys() == want.keys()
    assert {k: v for k, v in got.items() if k[0] not in VOLATILE} == {
        k: v for k, v in want.items() if k[0] not in VOLATILE
    }
    # what the comparison covers: tables (one failing), hypertables, jobs
    assert got[(M.TABLE_NEWEST.name, ("db", "ticks"))] == 1767323045.0
    assert got[(M.TABLE_HAS_ROWS.name, ("db", "empty"))] == 0
    assert got[(M.TABLE_QUERY_OK.name, ("db", "gone"))] == 0
    assert got[(M.HYPERTABLE_CHUNKS.name, ("db", "public.ticks"))] == 12
    job = ("db", "1000", "policy_compression", "public.ticks")
    assert got[(M.JOB_RUNS.name, job)] == 7


LIMITS_DB = "ts_pgb_limits"


@pytest.fixture(scope="module")
def limits_db(postgres_server: Postgres) -> str:
    """A fast table, one to be locked, and a "table" slower than any statement timeout
    (a view that sleeps, standing in for a table scanned without an index)."""
    create_database(postgres_server, LIMITS_DB)
    postgres_server.psql(
        "CREATE TABLE free (time timestamptz); INSERT INTO free VALUES (now());"
        " CREATE TABLE busy (time timestamptz); INSERT INTO busy VALUES (now());"
        " CREATE VIEW slow AS SELECT now() AS time FROM pg_sleep(5);",
        LIMITS_DB,
    )
    return LIMITS_DB


@pytest.mark.parametrize("via", [None, "session", "transaction"], ids=str)
async def test_statement_and_lock_timeouts_hold(
    via: PoolMode | None,
    pgbouncers: dict[PoolMode, PgBouncer],
    superuser: Postgres,
    limits_db: str,
) -> None:
    """The server cancels the slow lookup at statement_timeout (300 ms) and the locked
    one at lock_timeout (75 ms); the run goes on and succeeds, the other table reports.
    Without the server-side limits asyncpg would cancel at 800 ms and fail the run
    (``timeout``). The three share one batch: the lock fails it, the tables are then
    asked one by one, and the slow one is set apart without failing the run."""
    address = superuser.address if via is None else pgbouncers[via].address
    tables = [{"name": t, "table": t} for t in ("free", "busy", "slow")]
    target = _target(
        address,
        limits_db,
        tables=tables,
        statement_timeout=0.3,
        timeout=1.5,
        **_statement_cache(via),
    )
    holder = await asyncpg.connect(superuser.dsn(limits_db))
    try:
        await holder.execute("BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        outcomes = await _runs(target, 2)
    finally:
        await holder.close()
    for outcome in outcomes:
        assert outcome.ok, outcome.error
        m = _series(outcome)
        ok = {t: m[(M.TABLE_QUERY_OK.name, ("db", t))] for t in ("free", "busy", "slow")}
        assert ok == {"free": 1, "busy": 0, "slow": 0}
        assert outcome.duration < 1.2  # a lock wait or two, one statement timeout

    def sleeping() -> int:
        sql = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
        return int(superuser.psql(sql))

    async def cancelled() -> bool:
        return sleeping() == 0

    await eventually(cancelled, timeout=2)  # the server stopped the slow lookup itself


async def test_the_limits_are_the_runs_own_on_a_shared_server_connection(
    pgbouncers: dict[PoolMode, PgBouncer], superuser: Postgres
) -> None:
    """Under transaction pooling the next client gets the server connection the probe
    just used: it finds none of the run's limits there (a session ``SET`` would have
    left them), while the run itself was read-only (a watched view that writes fails)."""
    db, bouncer = "ts_pgb_shared", pgbouncers["transaction"]
    create_database(superuser, db)
    superuser.psql(
        "CREATE TABLE written (n int);"
        " CREATE FUNCTION write_one() RETURNS timestamptz LANGUAGE sql VOLATILE"
        "   AS $$ INSERT INTO written VALUES (1) RETURNING now() $$;"
        " CREATE VIEW writer AS SELECT write_one() AS time;",
        db,
    )
    target = _target(
        bouncer.address, db, tables=[{"name": "writer", "table": "writer"}], statement_cache=False
    )
    (outcome,) = await _runs(target, 1)
    assert outcome.ok, outcome.error
    assert _series(outcome)[(M.TABLE_QUERY_OK.name, ("db", "writer"))] == 0
    assert superuser.psql("SELECT count(*) FROM written", db).strip() == "0"

    servers = [s for s in bouncer.show("SERVERS") if s["database"] == db]
    assert len(servers) == 1, servers  # the run's, and the next client's
    row = bouncer.psql(
        "SELECT pg_backend_pid(), current_setting('statement_timeout'),"
        " current_setting('lock_timeout'), current_setting('idle_in_transaction_session_timeout'),"
        " current_setting('transaction_read_only')",
        db,
    )
    pid, *settings = row.strip().split("|")
    assert pid == servers[0]["remote_pid"]
    assert settings == ["0", "0", "0", "off"]


@pytest.mark.parametrize("cache", [True, False], ids=["statement_cache", "no_statement_cache"])
async def test_named_statements_under_transaction_pooling(
    cache: bool, pgbouncers: dict[PoolMode, PgBouncer], superuser: Postgres
) -> None:
    """PgBouncer 1.18 does not track protocol-level named statements (1.21 can, with
    ``max_prepared_statements``). A run lands on the server connection another client
    left idle last: here one the probe never used, where its named statements do not
    exist. ``statement_cache: false`` (unnamed statements) does not care."""
    db, bouncer = f"ts_pgb_cache_{cache}".lower(), pgbouncers["transaction"]
    create_database(superuser, db)
    target = _target(bouncer.address, db, statement_cache=cache)
    state = TimescaleState(target)
    try:
        first = await run_probe(TIMESCALE, target, state, target.timeout_s)
        assert first.ok, first.error
        holder = await asyncpg.connect(bouncer.dsn(db), ssl=False, statement_cache_size=0)
        try:
            await holder.execute("BEGIN; SELECT 1")  # holds the server connection of the run
            second = await run_probe(TIMESCALE, target, state, target.timeout_s)
        finally:
            await holder.close()
    finally:
        await state.aclose()
    if cache:
        assert second.reason == "protocol"
        assert 'prepared statement "__asyncpg_stmt_' in str(second.error)
        assert "does not exist" in str(second.error)
    else:
        assert second.ok, second.error


@pytest.mark.parametrize(
    ("case", "reason", "says"),
    [
        ("wrong password", "auth", "SASL authentication failed"),
        ("no such database", "config", 'database "ts_pgb_nowhere" does not exist'),
        ("statement mode", "config", "transaction blocks not allowed in statement pooling"),
    ],
)
async def test_pgbouncer_errors_have_their_reasons(
    case: str,
    reason: str,
    says: str,
    pgbouncers: dict[PoolMode, PgBouncer],
    superuser: Postgres,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PgBouncer reports its own errors, and the server's login errors, with SQLSTATE
    08P01 (a protocol violation): the probe reads what they say, on every run. After
    the server refused a login (no such database) PgBouncer holds the next logins of
    that pool for ``server_login_retry`` (15 s) without a word: the run that waits
    names the refusal it waits on, not a timeout."""
    wrong = "Wr0ng-" + superuser.password[::-1]
    monkeypatch.setenv("TS_PGB_WRONG", wrong)
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "wrong password": ("postgres", {"password": "${TS_PGB_WRONG}"}),
        "no such database": ("ts_pgb_nowhere", {}),
        "statement mode": ("postgres", {"statement_cache": False}),
    }
    database, fields = cases[case]
    mode: PoolMode = "statement" if case == "statement mode" else "transaction"
    target = _target(pgbouncers[mode].address, database, **fields)
    outcomes = await _runs(target, 2)
    assert [o.reason for o in outcomes] == [reason, reason]
    for outcome in outcomes:
        assert says in str(outcome.error)
        assert wrong not in str(outcome.error)
    assert outcomes[1].duration < target.timeout_s


GHOST_PASSWORD = "ghost-pw"


@pytest.fixture(scope="module")
def own_bouncer() -> Iterator[PgBouncer]:
    """A cluster of this module's own (tests stop it) behind a PgBouncer that also
    lets in ``ghost``, a user PostgreSQL does not know."""
    with service_root("ts-pgbouncer") as root:
        pg = Postgres(root).start()
        users = {pg.user: pg.password, "ghost": GHOST_PASSWORD}
        bouncer = PgBouncer(root, pg, "transaction", users=users).start()
        try:
            yield bouncer
        finally:
            bouncer.stop()
            pg.stop()


async def test_the_server_refusing_pgbouncer(
    own_bouncer: PgBouncer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PgBouncer passes on the server's refusal of its login (a user it knows and the
    server does not): ``auth``, and again while PgBouncer holds the next logins. With
    the server stopped, the run that finds it gone waits for PgBouncer until its
    deadline (``timeout``, or ``refused`` if PgBouncer already knew); the next ones are
    told at once that the server login has been failing (``refused``)."""
    bouncer, pg = own_bouncer, own_bouncer.backend
    monkeypatch.setenv(PASSWORD_ENV, pg.password)
    monkeypatch.setenv("TS_PGB_GHOST", GHOST_PASSWORD)
    ghost = _target(bouncer.address, "postgres", user="ghost", password="${TS_PGB_GHOST}")
    ghostly = await _runs(ghost, 2)
    assert [o.reason for o in ghostly] == ["auth", "auth"]
    assert 'password authentication failed for user "ghost"' in str(ghostly[1].error)

    target = _target(bouncer.address, "postgres", timeout=0.5)
    state = TimescaleState(target)
    try:
        assert (await run_probe(TIMESCALE, target, state, target.timeout_s)).ok
        pg.stop()
        reasons = [(await run_probe(TIMESCALE, target, state, target.timeout_s)) for _ in range(4)]
    finally:
        await state.aclose()
    assert reasons[0].reason in ("timeout", "refused")
    assert [o.reason for o in reasons[1:]] == ["refused"] * 3
    assert "server login has been failing" in str(reasons[-1].error)


async def test_a_transaction_left_on_a_shared_session_is_ended(
    timescale_lite: TimescaleLite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PGlite's one session outlives its clients: a client that went away inside a
    failed transaction leaves it to the next. The run rolls it back before its own
    (a plain BEGIN there fails: the transaction is aborted), and ends its own."""
    lite = timescale_lite
    monkeypatch.setenv(LITE_PASSWORD_ENV, lite.password)
    leaver = await asyncpg.connect(lite.dsn(), ssl=False, statement_cache_size=0)
    await leaver.execute("BEGIN")
    with pytest.raises(asyncpg.PostgresError):
        await leaver.execute("SELECT * FROM no_such_table")
    leaver.terminate()  # no ROLLBACK: the session stays in the failed transaction
    target = TimescaleTarget.model_validate(lite_target(lite, timeout=5.0, interval=10.0))
    try:
        (outcome,) = await _runs(target, 1)
        assert outcome.ok, outcome.error
        after = await asyncpg.connect(lite.dsn(), ssl=False, statement_cache_size=0)
        try:
            assert not after.is_in_transaction()
        finally:
            await after.close(timeout=5)
    finally:
        cleanup = await asyncpg.connect(lite.dsn(), ssl=False, statement_cache_size=0)
        if cleanup.is_in_transaction():
            await cleanup.execute("ROLLBACK")
        await cleanup.close(timeout=5)
