"""TimescaleDB/PostgreSQL: round trip, identity, connections, recovery and
replication lag, long transactions, size and counters; per watched table the
newest row's timestamp (ingest freshness); and, where the timescaledb
extension is installed, hypertable chunk counts and sizes and background jobs.

The statements live in :mod:`.timescale_sql`. Every connection the pool opens
goes through :class:`_BoundedLoop`: what the server sends is charged to the run's
response budget, and bytes that do not frame as PostgreSQL's end the connection.
A run is one read-only transaction that sets its own limits (``SET LOCAL``), so
that it works through PgBouncer in session and transaction pooling.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import ssl
import struct
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal, cast

import asyncpg
import asyncpg.protocol
from pydantic import Field, ValidationInfo, field_validator

from ...budget import BoundedProtocol, ReadBudget
from ...model import (
    NAME_PATTERN,
    Duration,
    HostTLSConfig,
    Name,
    PasswordMixin,
    StrictModel,
    TargetBase,
    parse_host_port,
)
from ...probe import (
    KindRuntime,
    ProbeContext,
    ProbeError,
    ProbeKind,
    ProbeResult,
    ProbeState,
    Reason,
)
from . import metrics as M
from . import sql as SQL

DEFAULT_PORT = 5432
BATCH = 50
"""Watched tables looked up per round trip."""
CLOSE_TIMEOUT = 0.5
"""How long a connection closed at the end of a run (``keep_connection: false``) may
take to say goodbye before it is aborted."""
LOGIN_MARGIN = 0.1
"""How long before the deadline a login held by PgBouncer is given up (at most a
tenth of the timeout), so that the run names the refusal it is waiting on."""
RESPONSE_BUDGET = 4 << 20
"""The kind's default ``response_budget``: a run at the default limits (500
hypertables, 500 jobs) with 1000 watched tables, names near 63 bytes, receives
about 256 KiB (tests/kinds/timescale/test_timescale.py), a sixteenth of it."""

SSLMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
_UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_STATES = {
    "active": "active",
    "idle": "idle",
    "idle in transaction": "idle_in_transaction",
    "idle in transaction (aborted)": "idle_in_transaction_aborted",
    "fastpath function call": "fastpath",
    "disabled": "disabled",
    "unknown": "unknown",
}


def _identifier(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


class WatchedTable(StrictModel):
    """A table whose newest row tells whether data is still landing."""

    name: str = Field(pattern=NAME_PATTERN)
    """The ``table`` label value."""
    schema_: str = Field(default="public", alias="schema", min_length=1)
    table: str = Field(min_length=1)
    time_column: str = Field(default="time", min_length=1)
    time_unit: Literal["s", "ms", "us", "ns"] = "s"
    """Unit of an integer or numeric time column (ignored for timestamp columns)."""
    freshness_sla: Duration = 300.0
    """How old the newest row may be while data should be landing."""
    calendar: Name | None = None
    """The calendar ingest into this table follows; defaults to the target's."""

    _no_nul = field_validator("schema_", "table", "time_column")(_identifier)


class TimescaleTarget(TargetBase, PasswordMixin):
    """One PostgreSQL database (with or without the timescaledb extension)."""

    address: str
    """``host:port`` (port defaults to 5432)."""
    database: str = Field(min_length=1)
    user: str = Field(min_length=1)
    sslmode: SSLMode = "prefer"
    tls: HostTLSConfig | None = None
    statement_timeout: Duration | None = None
    """Server- and client-side limit on each statement; defaults to half the timeout.
    Set per run (``SET LOCAL`` in the run's transaction), so it holds through
    PgBouncer in every pool mode but statement."""
    tables: list[WatchedTable] = Field(default_factory=list)
    max_hypertables: int = Field(default=500, ge=0)
    max_jobs: int = Field(default=500, ge=0)
    statement_cache: bool = True
    """Named prepared statements, kept per connection. Off: unnamed ones, parsed and
    planned on every run (PgBouncer in transaction mode before 1.21; PGlite)."""
    keep_connection: bool = True
    """Keep the connection between runs. Off: one connection per run, closed at its
    end (a server that serves one client at a time, such as PGlite)."""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_host_port(value, DEFAULT_PORT)
        return value

    @field_validator("tls")
    @classmethod
    def _tls(cls, value: HostTLSConfig | None, info: ValidationInfo) -> HostTLSConfig | None:
        if value is None:
            return value
        if info.data.get("sslmode", "prefer") in ("disable", "allow", "prefer"):
            raise ValueError("needs sslmode require, verify-ca or verify-full")
        return value

    @field_validator("statement_timeout")
    @classmethod
    def _statement_timeout(cls, value: float | None, info: ValidationInfo) -> float | None:
        timeout = info.data.get("timeout")
        if value is not None and timeout is not None and value > timeout:
            raise ValueError(f"must not exceed the timeout ({timeout:g}s)")
        return value

    @field_validator("tables")
    @classmethod
    def _unique_tables(cls, value: list[WatchedTable]) -> list[WatchedTable]:
        seen: set[str] = set()
        for table in value:
            if table.name in seen:
                raise ValueError(f"duplicate table name {table.name!r}")
            seen.add(table.name)
        return value

    @property
    def statement_timeout_s(self) -> float:
        """The effective per-statement limit: half the timeout unless set."""
        return min(self.statement_timeout or self.timeout_s / 2, self.timeout_s)

    @property
    def lock_timeout_s(self) -> float:
        """How long a statement waits for a lock (a table under DDL): short, so
        that a locked watched table fails alone and fast."""
        return min(self.statement_timeout_s / 4, 1.0)


def _ssl_arg(target: TimescaleTarget) -> ssl.SSLContext | str:
    """libpq's meaning: ``require`` verifies the chain only when a CA is given
    (like ``verify-ca``); ``verify-ca`` skips the host name; ``verify-full`` both."""
    if target.tls is None:
        return target.sslmode
    ctx = target.tls.context()
    if target.sslmode != "verify-full":
        ctx.check_hostname = False
    if target.sslmode == "require" and not target.tls.ca_file:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class NotPostgres(ConnectionError):
    """The server's bytes do not frame as PostgreSQL messages; the connection was aborted."""


_BACKEND_TYPES = frozenset(b"123ACDEGHIKNRSTVWZcdnstv")
"""Every message type a PostgreSQL server sends (protocol 3)."""
_LONG_TYPES = frozenset(b"ADENTVd")
"""The types that may be longer than ``_MAX_SHORT`` (libpq's VALID_LONG_MESSAGE_TYPE)."""
_MAX_SHORT = 30000
_FIRST_LIMITS = {ord("R"): 2000, ord("v"): 2000, ord("E"): _MAX_SHORT}
"""What a server may open with (Authentication, NegotiateProtocolVersion,
ErrorResponse) and how long it may be: libpq's check of a first reply."""


def _header_problem(header: bytes, first: bool) -> str | None:
    """What is wrong with a message header (its type and, once there, its length)."""
    mtype = header[0]
    allowed = _FIRST_LIMITS if first else _BACKEND_TYPES
    if mtype not in allowed:
        where = "first reply" if first else "message"
        return f"the server's {where} has type {header[:1]!r}: not PostgreSQL"
    if len(header) < 5:
        return None
    (length,) = struct.unpack("!I", header[1:])
    if first:
        shortest, limit = 8, _FIRST_LIMITS[mtype]
    else:
        shortest, limit = 4, (1 << 32) - 1 if mtype in _LONG_TYPES else _MAX_SHORT
    if not shortest <= length <= limit:
        return (
            f"the server's {chr(mtype)!r} message announces {length} bytes"
            f" (at most {limit}): not PostgreSQL"
        )
    return None


class _FramingCheck(asyncio.Protocol):
    """Sits in front of asyncpg's protocol and checks how the server's bytes frame.

    asyncpg takes any byte for a message type and waits for as many bytes as the
    next four announce: a peer that is not PostgreSQL (garbage, an HTTP server) would
    hold every run until its deadline. As libpq does, the first reply must be an
    Authentication, NegotiateProtocolVersion or ErrorResponse of a plausible length,
    every message a known type, and only rows, errors, notices and the like longer
    than 30000 bytes. Huge rows are the response budget's business.
    """

    def __init__(self, inner: asyncio.Protocol) -> None:
        self.inner = inner
        self._header = b""
        self._body_left = 0
        self._first = True
        self._rejected = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        problem = self._scan(data)
        if problem is not None:
            self._reject(problem)
            return
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._rejected else self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._rejected:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _scan(self, data: bytes) -> str | None:
        i, n = 0, len(data)
        while i < n:
            if self._body_left:
                step = min(self._body_left, n - i)
                self._body_left -= step
                i += step
                continue
            take = 5 - len(self._header)
            self._header += data[i : i + take]
            i += take
            problem = _header_problem(self._header, self._first)
            if problem is not None or len(self._header) < 5:
                return problem
            self._body_left = struct.unpack("!I", self._header[1:])[0] - 4
            self._header = b""
            self._first = False
        return None

    def _reject(self, problem: str) -> None:
        self._rejected = True
        if self._transport is not None:
            self._transport.abort()
        self.inner.connection_lost(NotPostgres(problem))


class _BoundedLoop:
    """The event loop as asyncpg sees it while connecting: every connection it opens
    (the SSLRequest exchange, the session, TLS or not) is a ``BoundedProtocol``, and a
    session's framing is checked (:class:`_FramingCheck`).

    It has no ``start_tls``: asyncpg then opens TLS after the SSLRequest with
    ``create_connection(sock=..., ssl=...)`` on a copy of the socket, through this
    proxy too. With ``start_tls``, a server answering "no TLS" under ``prefer`` would
    get its socket handed to asyncpg's protocol by ``set_protocol``, past the budget.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, budget: ReadBudget) -> None:
        self.loop = loop
        self.budget = budget

    def __getattr__(self, name: str) -> Any:
        if name == "start_tls":
            raise AttributeError(name)
        return getattr(self.loop, name)

    async def create_connection(
        self, protocol_factory: Callable[[], asyncio.Protocol], *args: Any, **kwargs: Any
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        """``loop.create_connection``; returns asyncpg's own protocol, as it expects."""

        def bounded() -> BoundedProtocol:
            inner = protocol_factory()
            if isinstance(inner, asyncpg.protocol.Protocol):
                inner = _FramingCheck(inner)
            return BoundedProtocol(inner, self.budget)

        transport, outer = await self.loop.create_connection(bounded, *args, **kwargs)
        inner = outer.inner
        return transport, inner.inner if isinstance(inner, _FramingCheck) else inner


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """The probe changes no session state, so a released connection needs no reset."""

    def __init__(self, protocol: Any, transport: Any, loop: Any, *args: Any) -> None:
        # the proxy was for connecting; asyncpg looks up the running task by this loop
        # (asyncio.current_task), so the connection keeps the real one. Its cancel
        # requests open connections that asyncpg reads nothing from.
        real = loop.loop if isinstance(loop, _BoundedLoop) else loop
        super().__init__(protocol, transport, real, *args)

    def get_reset_query(self) -> str:
        return ""


class TimescaleState(ProbeState):
    """The target's connection pool (two connections at most), opened on first use;
    or, with ``keep_connection: false``, a connection per run."""

    def __init__(self, target: TimescaleTarget) -> None:
        self.target = target
        self._ssl = _ssl_arg(target)
        limits = (
            max(1, round(target.statement_timeout_s * 1000)),
            max(1, round(target.lock_timeout_s * 1000)),
            max(1, round(target.timeout_s * 1000)),
        )
        self.begin = SQL.begin(*limits)
        """Opens a run's transaction (:func:`.timescale_sql.begin`)."""
        self.restart = SQL.begin(*limits, after_failure=True)
        """Ends an aborted (or left over) transaction and opens a new one."""
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self.isolated: dict[str, bool] = {}
        """Tables queried one by one since their batch hit statement_timeout; True
        once a query of the table alone hit it too."""
        self.refused_login: tuple[Reason, str] | None = None
        """Why PgBouncer last refused a login for the server's reason (``auth``,
        ``config``), until a connection opens (see :func:`_acquire`)."""

    def _params(self) -> dict[str, Any]:
        """What every connection is opened with, pooled or not."""
        t = self.target
        host, port = parse_host_port(t.address, DEFAULT_PORT)
        return {
            "host": host,
            "port": port,
            "user": t.user,
            "password": t.password_value(),
            "database": t.database,
            "ssl": self._ssl,
            "timeout": t.timeout_s,
            "command_timeout": t.statement_timeout_s + 0.5,  # the server cancels first
            "statement_cache_size": 32 + len(t.tables) // BATCH if t.statement_cache else 0,
            "connection_class": _Connection,
            # what PgBouncer accepts at startup (it tracks application_name); the
            # limits and read-only are the run's transaction's (TimescaleState.begin)
            "server_settings": {"application_name": "tradeops-exporter"},
        }

    async def pool(self) -> asyncpg.Pool:
        """The pool; creating it opens no connection (connections open on demand)."""
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    **self._params(),
                    min_size=0,
                    max_size=2,
                    max_inactive_connection_lifetime=max(300.0, 3 * self.target.interval_s),
                    connect=self._connect,
                )
            return self._pool

    async def acquire(self) -> Any:
        """A connection for one run: from the pool, or a new one (``keep_connection``)."""
        if not self.target.keep_connection:
            return await self._connect(loop=asyncio.get_running_loop(), **self._params())
        return await (await self.pool()).acquire()

    async def release(self, conn: Any, deadline: float) -> None:
        """Hand the run's connection back to the pool, or close it before ``deadline``."""
        if self.target.keep_connection:
            await (await self.pool()).release(conn)
            return
        if conn.is_closed():
            return
        left = deadline - asyncio.get_running_loop().time()
        # asyncpg aborts a connection it could not close in time; the run's data stands
        with contextlib.suppress(Exception):
            await conn.close(timeout=max(0.01, min(CLOSE_TIMEOUT, left / 2)))

    async def _connect(
        self, *args: Any, loop: asyncio.AbstractEventLoop, **kwargs: Any
    ) -> asyncpg.Connection:
        """The pool's way to open a connection: through the run's budget."""
        return await asyncpg.connect(*args, loop=_BoundedLoop(loop, self.budget), **kwargs)

    async def aclose(self) -> None:
        if self._pool is None:
            return
        try:
            await asyncio.wait_for(self._pool.close(), 1.0)
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            self._pool.terminate()


_POOLER_ERRORS: tuple[tuple[re.Pattern[str], Reason], ...] = (
    (re.compile(r"authentication failed|login rejected|no authentication method"), "auth"),
    (re.compile(r'^role ".*" does not exist'), "auth"),
    (re.compile(r'^database ".*" does not exist|^no such database'), "config"),
    (re.compile(r"not allowed in statement pooling mode"), "config"),
    (
        re.compile(r"server login has been failing|cannot connect to server|no more connections"),
        "refused",
    ),
)
"""PgBouncer's own errors (and the server's login errors it relays) all have SQLSTATE
08P01 (1.18): what their text says. PostgreSQL sends 08P01 with none of these."""


def _pooler_reason(exc: BaseException) -> Reason | None:
    """The reason a PgBouncer error names, found in the exception or its causes
    (asyncpg reports a connection PgBouncer closed with the error as the cause)."""
    cause: BaseException | None = exc
    for _ in range(5):
        if cause is None:
            return None
        if isinstance(cause, asyncpg.PostgresError) and cause.sqlstate == "08P01":
            text = str(getattr(cause, "message", "") or cause)
            for pattern, reason in _POOLER_ERRORS:
                if pattern.search(text):
                    return reason
        cause = cause.__cause__ or cause.__context__
    return None


def classify(exc: BaseException) -> Reason | None:
    """Map asyncpg exceptions (SQLSTATE classes, PgBouncer's errors) to reasons."""
    if pooler := _pooler_reason(exc):
        return pooler
    if isinstance(exc, asyncpg.PostgresError):
        code = str(getattr(exc, "sqlstate", "") or "")
        if code.startswith("28") or code == "42501":
            return "auth"  # invalid password / authorization / insufficient privilege
        if code == "3D000":
            return "config"  # database does not exist
        if code == "57014":
            return "timeout"  # statement timeout
        if code in ("53300", "57P01", "57P02", "57P03"):
            return "refused"  # too many connections, shutting down, starting up
        if code.startswith("26"):
            return "protocol"  # a named statement missing: a server connection shared
        if code.startswith("08"):
            return "protocol"  # connection dropped mid-exchange (or not PostgreSQL)
        return "protocol" if code.startswith("42") else "other"
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return "protocol"  # asyncpg could not make sense of what the peer sent
    if isinstance(exc, ConnectionError):
        return "protocol"  # hung up, or answered the SSLRequest with nonsense (not refused)
    if isinstance(exc, OSError) and exc.errno is None and "refused" in str(exc).lower():
        return "refused"  # several addresses tried, all refused
    return None


def to_unix(value: object, unit: str) -> float | None:
    """A time column's value as Unix seconds; None for types that are not times."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value) * _UNIT_SECONDS[unit]
    return None


async def _begin(r: ProbeResult, name: str, conn: Any, state: TimescaleState) -> None:
    """Open the run's transaction with ``SELECT 1`` in the same simple query: one round
    trip in every mode (no statement prepared), timed as ``query_roundtrip_seconds``."""
    # already in a transaction: PGlite's one session, after a client that went away
    # in the middle of one (a server ends the transaction of a client gone)
    opening = state.restart if conn.is_in_transaction() else state.begin
    start = time.perf_counter()
    await conn.execute(f"{opening}; {SQL.ROUNDTRIP}")
    r.add(M.ROUNDTRIP, time.perf_counter() - start, name)


async def _server(r: ProbeResult, name: str, conn: Any) -> asyncpg.Record:
    row = await conn.fetchrow(SQL.SERVER)
    if row is None:
        raise ProbeError("protocol", "the server reported no row for the current database")
    r.add(M.INFO, 1, name, row["server_version"], row["extension_version"] or "")
    r.add(M.EXTENSION_INSTALLED, row["extension_version"] is not None, name)
    r.add(M.START_TIME, row["start_time"], name)
    r.add(M.IN_RECOVERY, row["in_recovery"], name)
    r.add(M.MAX_CONNECTIONS, row["max_connections"], name)
    r.add(M.RESERVED_CONNECTIONS, row["reserved_connections"], name)
    r.add(M.DATABASE_SIZE, row["database_size"], name)
    r.add(M.XID_AGE, row["xid_age"], name)
    r.add(M.COMMITS, row["xact_commit"], name)
    r.add(M.ROLLBACKS, row["xact_rollback"], name)
    r.add(M.DEADLOCKS, row["deadlocks"], name)
    r.add(M.CONFLICTS, row["conflicts"], name)
    return row


async def _activity(r: ProbeResult, name: str, conn: Any) -> None:
    counts = dict.fromkeys(_STATES.values(), 0)
    oldest = idle_oldest = 0.0
    for row in await conn.fetch(SQL.ACTIVITY):
        state = _STATES.get(row["state"], "unknown")
        counts[state] += row["connections"]
        age = row["oldest_xact"] or 0.0
        oldest = max(oldest, age)
        if state.startswith("idle_in_transaction"):
            idle_oldest = max(idle_oldest, age)
    for state, count in counts.items():
        r.add(M.CONNECTIONS, count, name, state)
    r.add(M.OLDEST_TRANSACTION, oldest, name)
    r.add(M.OLDEST_IDLE_IN_TRANSACTION, idle_oldest, name)


async def _replication(r: ProbeResult, name: str, conn: Any, in_recovery: bool) -> None:
    if in_recovery:
        row = await conn.fetchrow(SQL.STANDBY_REPLICATION)
        r.add(M.STANDBY_LAST_REPLAY, row["last_replay"], name)
        r.add(M.STANDBY_REPLAY_LAG, row["replay_lag"], name)
        r.add(M.STANDBY_REPLAY_LAG_BYTES, row["replay_lag_bytes"], name)
        r.add(M.STANDBY_RECEIVER_STREAMING, row["receiver_streaming"] > 0, name)
        return
    row = await conn.fetchrow(SQL.PRIMARY_REPLICATION)
    r.add(M.REPLICAS, row["replicas"], name)
    r.add(M.REPLICAS_STREAMING, row["streaming"], name)
    r.add(M.PRIMARY_REPLAY_LAG, row["max_replay_lag"], name)
    r.add(M.PRIMARY_REPLAY_LAG_BYTES, row["max_replay_lag_bytes"], name)
    r.add(M.INACTIVE_SLOTS, row["inactive_slots"], name)
    r.add(M.SLOT_RETAINED_BYTES, row["max_slot_retained_bytes"], name)


def _table_series(
    r: ProbeResult,
    target: TimescaleTarget,
    table: WatchedTable,
    ok: bool,
    raw: object,
    now: float,
) -> None:
    name = target.name
    newest = to_unix(raw, table.time_unit) if ok and raw is not None else None
    ok = ok and (raw is None or newest is not None)  # a non-time column is a failure
    r.add(M.TABLE_QUERY_OK, ok, name, table.name)
    calendar = table.calendar or target.calendar
    r.add(M.TABLE_SLA, table.freshness_sla, name, table.name, calendar)
    if not ok:
        return
    r.add(M.TABLE_HAS_ROWS, newest is not None, name, table.name)
    r.add(M.TABLE_NEWEST, newest, name, table.name)
    within = newest is not None and now - newest <= table.freshness_sla
    r.add(M.TABLE_WITHIN_SLA, within, name, table.name)


def _spec(table: WatchedTable) -> tuple[str, str, str]:
    return (table.schema_, table.table, table.time_column)


async def _tables(
    r: ProbeResult, target: TimescaleTarget, conn: Any, ctx: ProbeContext[TimescaleState]
) -> None:
    """Newest rows in batches of BATCH tables. A batch that hits statement_timeout is
    queried table by table from the next run on, so one slow table blinds only itself:
    the fast ones go back to the batch, the slow one stays alone and is asked last,
    while the run's time allows."""
    state, now = ctx.state, ctx.now()
    batched = [t for t in target.tables if t.name not in state.isolated]
    alone = sorted(
        (t for t in target.tables if t.name in state.isolated),
        key=lambda t: state.isolated[t.name],  # suspects before confirmed slow ones
    )
    for i in range(0, len(batched), BATCH):
        batch = batched[i : i + BATCH]
        try:
            row = await conn.fetchrow(SQL.newest_rows([_spec(t) for t in batch]))
            results: list[tuple[bool, object]] = [(True, v) for v in row.values()]
        except asyncpg.QueryCanceledError:
            await conn.execute(state.restart)
            results = [(False, None)] * len(batch)  # too slow to retry in this run
            state.isolated.update(dict.fromkeys((t.name for t in batch), False))
        except asyncpg.PostgresError:
            await conn.execute(state.restart)
            results = await _each_table(conn, state, batch)  # which one failed
        for table, (ok, raw) in zip(batch, results, strict=True):
            _table_series(r, target, table, ok, raw, now)
    loop = asyncio.get_running_loop()
    for table in alone:
        ok, raw = False, None
        if loop.time() + target.statement_timeout_s < ctx.deadline:
            try:
                ok, raw = await _one_table(conn, state, table)
                del state.isolated[table.name]
            except asyncpg.QueryCanceledError:
                state.isolated[table.name] = True
        _table_series(r, target, table, ok, raw, now)


async def _each_table(
    conn: Any, state: TimescaleState, batch: list[WatchedTable]
) -> list[tuple[bool, object]]:
    """A failed batch's tables one by one. Once one hits statement_timeout the rest
    are not asked in this run; from the next on they are asked alone, as after a
    batch's timeout."""
    results: list[tuple[bool, object]] = []
    for i, table in enumerate(batch):
        try:
            results.append(await _one_table(conn, state, table))
        except asyncpg.QueryCanceledError:
            state.isolated[table.name] = True
            rest = batch[i + 1 :]
            state.isolated.update(dict.fromkeys((t.name for t in rest), False))
            return results + [(False, None)] * (1 + len(rest))
    return results


async def _one_table(conn: Any, state: TimescaleState, table: WatchedTable) -> tuple[bool, object]:
    """One table's newest value; a failure ends the run's transaction, so a new one
    is opened before the next statement (a statement timeout is raised after it)."""
    try:
        return True, await conn.fetchval(SQL.newest_row(*_spec(table)))
    except asyncpg.PostgresError as exc:
        await conn.execute(state.restart)
        if isinstance(exc, asyncpg.QueryCanceledError):
            raise
        return False, None


async def _hypertables(r: ProbeResult, target: TimescaleTarget, conn: Any, ext: str) -> None:
    name = target.name
    for row in await conn.fetch(SQL.hypertables(ext), target.max_hypertables):
        ht = f"{row['hypertable_schema']}.{row['hypertable_name']}"
        r.add(M.HYPERTABLE_CHUNKS, row["num_chunks"], name, ht)
        r.add(M.HYPERTABLE_COMPRESSED_CHUNKS, row["compressed_chunks"], name, ht)
        r.add(M.HYPERTABLE_COMPRESSION_ENABLED, row["compression_enabled"], name, ht)
        r.add(M.HYPERTABLE_SIZE, row["total_bytes"], name, ht)


async def _jobs(r: ProbeResult, target: TimescaleTarget, conn: Any) -> None:
    for row in await conn.fetch(SQL.JOBS, target.max_jobs):
        labels = (target.name, str(row["job_id"]), row["proc_name"], row["hypertable"])
        status = row["last_run_status"]
        r.add(M.JOB_LAST_RUN_OK, None if status is None else status == "Success", *labels)
        r.add(M.JOB_RUNS, row["total_runs"], *labels)
        r.add(M.JOB_FAILURES, row["total_failures"], *labels)
        r.add(M.JOB_LAST_SUCCESS, row["last_success"], *labels)
        r.add(M.JOB_NEXT_START, row["next_start"], *labels)
        r.add(M.JOB_PAUSED, not row["scheduled"], *labels)
        r.add(M.JOB_RUNNING, row["job_status"] == "Running", *labels)


async def _collect(
    target: TimescaleTarget, conn: Any, ctx: ProbeContext[TimescaleState]
) -> ProbeResult:
    r = ProbeResult()
    await _begin(r, target.name, conn, ctx.state)
    server = await _server(r, target.name, conn)
    await _activity(r, target.name, conn)
    await _replication(r, target.name, conn, bool(server["in_recovery"]))
    await _tables(r, target, conn, ctx)
    if server["extension_version"] is not None:
        await _hypertables(r, target, conn, server["extension_schema"])
        await _jobs(r, target, conn)
    await conn.execute(SQL.COMMIT)
    return r


def _not_postgres(exc: BaseException) -> ProbeError | None:
    """A ``protocol`` error naming what :class:`_FramingCheck` found, when it ended the
    connection (asyncpg reports only that the connection closed)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, NotPostgres):
        cause = cause.__cause__
    return None if cause is None else ProbeError("protocol", str(cause))


async def _acquire(ctx: ProbeContext[TimescaleState]) -> Any:
    """The run's connection. Once PgBouncer has passed on the server's refusal of a
    login (no such database, a user the server rejects), it holds new logins of that
    pool until it tries the server again (``server_login_retry``, 15 s): a run that
    waits for it then fails for the reason the refusal gave, not as a timeout."""
    state = ctx.state
    held = state.refused_login
    try:
        if held is None:
            conn = await state.acquire()
        else:
            margin = min(LOGIN_MARGIN, state.target.timeout_s / 10)
            async with asyncio.timeout_at(ctx.deadline - margin):
                conn = await state.acquire()
    except TimeoutError as exc:
        if held is None:
            raise
        message = f"{held[1]} (PgBouncer holds new logins until it retries)"
        raise ProbeError(held[0], message) from exc
    except asyncpg.PostgresError as exc:
        refusal = _pooler_reason(exc)
        state.refused_login = None
        if refusal == "auth" or refusal == "config":
            state.refused_login = (refusal, str(exc))
        raise
    state.refused_login = None
    return conn


async def probe(target: TimescaleTarget, ctx: ProbeContext[TimescaleState]) -> ProbeResult:
    """Probe one database on a pooled connection (or one of its own)."""
    try:
        conn = await _acquire(ctx)
    except Exception as exc:
        if named := _not_postgres(exc):
            raise named from exc
        raise
    try:
        return await _collect(target, conn, ctx)
    except BaseException as exc:
        # a cancelled or failed run leaves no half-done protocol state; a connection
        # already lost was handed back to the pool by asyncpg, and says so
        with contextlib.suppress(asyncpg.InterfaceError):
            conn.terminate()
        if isinstance(exc, Exception) and (named := _not_postgres(exc)):
            raise named from exc
        raise
    finally:
        await ctx.state.release(conn, ctx.deadline)


RUNTIME: KindRuntime[TimescaleTarget, TimescaleState] = KindRuntime(probe, TimescaleState, classify)

KIND: ProbeKind[TimescaleTarget, TimescaleState] = ProbeKind(
    name="timescale",
    target_model=TimescaleTarget,
    families=M.FAMILIES,
    load=lambda: RUNTIME,
    address_field="address",
    example_address="127.0.0.1:5432",
    response_budget=RESPONSE_BUDGET,
)
