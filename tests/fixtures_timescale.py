"""Helpers for the TimescaleDB/PostgreSQL tests: databases, the read-only role
(taken verbatim from docs/timescale.md), a mirror of the extension's views (for
what the real one cannot show), the stack's real TimescaleDB (PGlite), a target's
config and series, and the backend messages the protocol tests send."""

from __future__ import annotations

import os
import re
import secrets
import struct
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from stack import Postgres, TimescaleLite
from stack.postgres import _postgres_bin, as_postgres_user
from stack.sim_hypertable import RECORD_RUN

from .helpers import Running, Series, self_signed_cert, value

DOCS = Path(__file__).resolve().parent.parent / "docs" / "timescale.md"
MONITOR_ROLE = "tradeops_monitor"
DOCS_DATABASE = "marketdata"

_DOC_BLOCK = re.compile(r"<!-- grants -->\s*```sql\n(.*?)```", re.S)


def documented_grants() -> str:
    """The role and GRANT statements exactly as docs/timescale.md gives them."""
    m = _DOC_BLOCK.search(DOCS.read_text(encoding="utf-8"))
    assert m, "docs/timescale.md lost its <!-- grants --> SQL block"
    return m.group(1)


def create_database(pg: Postgres, name: str) -> None:
    """A fresh database (dropped first if a previous run left it)."""
    pg.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    pg.psql(f'CREATE DATABASE "{name}"')


def create_monitor_role(pg: Postgres) -> str:
    """Create the docs' database, tick table and read-only role; returns its password.

    The password is set separately: the docs leave it to the operator.
    """
    create_database(pg, DOCS_DATABASE)
    pg.psql(
        "CREATE SCHEMA market;"
        " CREATE TABLE market.ticks (time timestamptz NOT NULL, symbol text, price float8);"
        " CREATE INDEX ON market.ticks (time DESC);",
        DOCS_DATABASE,
    )
    pg.psql(f"DROP ROLE IF EXISTS {MONITOR_ROLE}")
    password = secrets.token_urlsafe(16)
    for statement in _statements(documented_grants()):
        pg.psql(statement, DOCS_DATABASE)
    pg.psql(f"ALTER ROLE {MONITOR_ROLE} PASSWORD '{password}'")
    return password


def _statements(sql: str) -> list[str]:
    lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


MIRROR_EXTENSION_VERSION = "2.17.2"

MIRROR_SQL = f"""
CREATE SCHEMA tsmirror;
CREATE VIEW tsmirror.pg_extension AS
  SELECT oid, extname, extowner, extnamespace, extrelocatable, extversion, extconfig,
         extcondition
    FROM pg_catalog.pg_extension
  UNION ALL
  SELECT 0::oid, 'timescaledb'::name, 10::oid, 'tsmirror'::regnamespace::oid, false,
         '{MIRROR_EXTENSION_VERSION}'::text, NULL::oid[], NULL::text[];
CREATE FUNCTION tsmirror.hypertable_size(hypertable regclass) RETURNS bigint
  LANGUAGE sql STABLE AS $$ SELECT pg_total_relation_size(hypertable) $$;

CREATE SCHEMA timescaledb_information;
CREATE TABLE timescaledb_information.hypertables (
  hypertable_schema name, hypertable_name name, owner name, num_dimensions smallint,
  num_chunks bigint, compression_enabled boolean, tablespaces name[]);
CREATE TABLE timescaledb_information.chunks (
  hypertable_schema name, hypertable_name name, chunk_schema name, chunk_name name,
  primary_dimension name, primary_dimension_type regtype, range_start timestamptz,
  range_end timestamptz, range_start_integer bigint, range_end_integer bigint,
  is_compressed boolean, chunk_tablespace name, chunk_creation_time timestamptz);
CREATE TABLE timescaledb_information.jobs (
  job_id integer, application_name name, schedule_interval interval,
  max_runtime interval, max_retries integer, retry_period interval, proc_schema name,
  proc_name name, owner regrole, scheduled boolean, fixed_schedule boolean, config jsonb,
  next_start timestamptz, initial_start timestamptz, hypertable_schema name,
  hypertable_name name, check_schema name, check_name name);
CREATE TABLE timescaledb_information.job_stats (
  hypertable_schema name, hypertable_name name, job_id integer,
  last_run_started_at timestamptz, last_successful_finish timestamptz,
  last_run_status text, job_status text, last_run_duration interval,
  next_start timestamptz, total_runs bigint, total_successes bigint,
  total_failures bigint);
GRANT USAGE ON SCHEMA tsmirror, timescaledb_information TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA tsmirror, timescaledb_information TO PUBLIC;
"""
"""Stands in for the timescaledb extension, which cannot be installed here.

``timescaledb_information`` holds tables with the columns of the TimescaleDB
2.x views of the same names (2.14+: no multi-node columns); ``tsmirror``
plays the extension's schema (``hypertable_size``) and shadows
``pg_extension`` for roles whose ``search_path`` puts it before
``pg_catalog``, so the probe's detection finds an extension row.
"""


def install_mirror(pg: Postgres, database: str, role: str) -> None:
    """Install the mirror in ``database`` and make ``role`` see it there."""
    pg.psql(MIRROR_SQL, database)
    pg.psql(
        f'ALTER ROLE "{role}" IN DATABASE "{database}"'
        " SET search_path = tsmirror, pg_catalog, public"
    )


class Standby(Postgres):
    """A streaming standby of ``primary``, cloned with ``pg_basebackup -R``."""

    name = "standby"

    def __init__(self, root: Path, primary: Postgres) -> None:
        super().__init__(root)
        self.primary = primary
        self.password = primary.password  # the clone keeps the primary's roles

    def prepare(self) -> None:
        kw = self.own_dir()
        out = subprocess.run(
            [
                _postgres_bin("pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                self.primary.user,
                "-D",
                str(self.data),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
            check=False,
            capture_output=True,
            timeout=120,
            env={**os.environ, "PGPASSWORD": self.primary.password},
            **kw,
        )
        if out.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {out.stderr.decode(errors='replace')}")


class TLSPostgres(Postgres):
    """PostgreSQL with TLS on (plain connections are still accepted)."""

    name = "postgres-tls"

    def prepare(self) -> None:
        super().prepare()
        self.cert, key = self_signed_cert(self.dir, "server")
        kw = as_postgres_user()
        if kw:
            for path in (self.cert, key):
                os.chown(path, kw["user"], kw["group"])
        key.chmod(0o600)
        self.key = key

    def command(self) -> list[str]:
        return [
            *super().command(),
            "-c",
            "ssl=on",
            "-c",
            f"ssl_cert_file={self.cert}",
            "-c",
            f"ssl_key_file={self.key}",
        ]


LITE_PASSWORD_ENV = "TS_LITE_PASSWORD"
"""The environment variable the PGlite targets' ``password`` names (any value works)."""


def lite_target(lite: TimescaleLite, **fields: object) -> dict[str, object]:
    """A target for the stack's PGlite TimescaleDB: unnamed statements and a
    connection per run, as a server that serves one client at a time and keeps one
    session for all of them needs (docs/timescale.md)."""
    return {
        "name": "db",
        "address": lite.address,
        "database": lite.database,
        "user": lite.user,
        "password": f"${{{LITE_PASSWORD_ENV}}}",
        "sslmode": "disable",
        "statement_cache": False,
        "keep_connection": False,
        "interval": 0.5,
        "timeout": 0.4,
        **fields,
    }


async def lite_sql(lite: TimescaleLite, sql: str) -> None:
    """Run SQL statements on PGlite from a client of its own (queued behind the
    exporter's run, never blocking the event loop the exporter runs on)."""
    conn = await asyncpg.connect(lite.dsn(), ssl=False, statement_cache_size=0, timeout=30)
    try:
        await conn.execute(sql)  # the simple protocol: several statements at once
    finally:
        await conn.close(timeout=5)


async def lite_fetch(lite: TimescaleLite, sql: str, *args: object) -> list[asyncpg.Record]:
    """The rows of one statement, as :func:`lite_sql` runs them."""
    conn = await asyncpg.connect(lite.dsn(), ssl=False, statement_cache_size=0, timeout=30)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close(timeout=5)


async def run_job(lite: TimescaleLite, job_id: int) -> bool:
    """Run a TimescaleDB job with ``CALL run_job`` (the job's real work: chunks get
    compressed, a failing procedure raises), then write its run into the job
    statistics as TimescaleDB's scheduler does after a run. PGlite has no
    background workers, hence no scheduler, and ``run_job`` in the foreground
    records no run (measured on 2.23: nothing after a success; after a failure a
    row with no runs and ``-infinity`` start times). True if the job succeeded."""
    conn = await asyncpg.connect(lite.dsn(), ssl=False, statement_cache_size=0, timeout=30)
    try:
        start = await conn.fetchval("SELECT clock_timestamp()")
        try:
            await conn.execute(f"CALL run_job({int(job_id)})")
            ok = True
        except asyncpg.RaiseError:
            ok = False
        finish = await conn.fetchval("SELECT clock_timestamp()")
        await conn.execute(RECORD_RUN, job_id, start, finish, ok)
        return ok
    finally:
        await conn.close(timeout=5)


Factory = Callable[..., Any]
"""The ``exporter_factory`` fixture: starts the exporter on a config's text."""
KIND = {"kind": "timescale", "target": "db"}
"""The framework series' labels for the target of :func:`db_config`."""
T = {"target": "db"}
"""The kind's series' labels for the target of :func:`db_config`."""


def db_config(
    pg: Postgres,
    database: str,
    *,
    user: str = "postgres",
    password_env: str = "TS_TEST_PASSWORD",
    tables: str = "",
    interval: str = "1s",
    timeout: str = "600ms",
) -> str:
    """A config with one target ``db`` on ``database``; ``tables`` are YAML list
    items indented by six spaces."""
    return f"""
timescale:
  - name: db
    address: {pg.address}
    database: {database}
    user: {user}
    password: ${{{password_env}}}
    sslmode: disable
    interval: {interval}
    timeout: {timeout}
    tables:
{tables or "      []"}
"""


def holds(run: Running, pred: Callable[[Series], bool]) -> Callable[[], Awaitable[bool]]:
    """For ``eventually``: whether ``pred`` holds of a fresh scrape."""

    async def check() -> bool:
        return pred(await run.scrape())

    return check


def errors(m: Series, reason: str) -> float:
    """The target ``db``'s failed runs for ``reason`` (0 before the first)."""
    return value(m, "tradeops_probe_errors_total", **KIND, reason=reason) or 0.0


def up(m: Series) -> float | None:
    """The target ``db``'s ``up``."""
    return value(m, "tradeops_up", **KIND)


def stat_database(pg: Postgres, database: str, column: str) -> float:
    """One counter of ``pg_stat_database``, read by psql in a session of its own."""
    return float(
        pg.psql(f"SELECT {column} FROM pg_stat_database WHERE datname = '{database}'").strip()
    )


def backend_message(mtype: bytes, body: bytes) -> bytes:
    """One backend message: type, length (counting itself), body."""
    return mtype + struct.pack("!I", len(body) + 4) + body


AUTH_OK = backend_message(b"R", struct.pack("!I", 0))
HANDSHAKE = (
    AUTH_OK
    + backend_message(b"S", b"server_version\x0015.0\x00")
    + backend_message(b"K", struct.pack("!II", 1, 2))
    + backend_message(b"Z", b"I")
)
"""What a server answers a StartupMessage with when it lets the client in."""
