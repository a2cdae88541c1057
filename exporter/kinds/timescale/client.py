"""Connections to PostgreSQL: TLS (libpq's sslmodes), the pool or a connection per run,
the response budget and framing check on every connection, and the error mapping.

Every connection asyncpg opens goes through :class:`_BoundedLoop`: what the server
sends is charged to the run's response budget, and bytes that do not frame as
PostgreSQL's end the connection (:mod:`.framing`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Callable
from typing import Any

import asyncpg
import asyncpg.protocol

from ...budget import BoundedProtocol, ReadBudget
from ...model import parse_host_port
from ...probe import ProbeError, ProbeState, Reason
from .config import DEFAULT_PORT, TimescaleTarget
from .framing import FramingCheck
from .freshness import BATCH

CLOSE_TIMEOUT = 0.5
"""How long a connection closed at the end of a run (``keep_connection: false``) may
take to say goodbye before it is aborted."""
LOGIN_MARGIN = 0.1
"""How long before the deadline a login held by PgBouncer is given up (at most a
tenth of the timeout), so that the run names the refusal it is waiting on."""


def ssl_arg(target: TimescaleTarget) -> ssl.SSLContext | str:
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


class _BoundedLoop:
    """The event loop as asyncpg sees it while connecting: every connection it opens
    (the SSLRequest exchange, the session, TLS or not) is a ``BoundedProtocol``, and a
    session's framing is checked (:class:`.framing.FramingCheck`).

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
                inner = FramingCheck(inner)
            return BoundedProtocol(inner, self.budget)

        transport, outer = await self.loop.create_connection(bounded, *args, **kwargs)
        inner = outer.inner
        return transport, inner.inner if isinstance(inner, FramingCheck) else inner


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


class Connections(ProbeState):
    """The target's connection pool (two connections at most), opened on first use;
    or, with ``keep_connection: false``, a connection per run."""

    def __init__(self, target: TimescaleTarget) -> None:
        self.target = target
        self._ssl = ssl_arg(target)
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self.refused_login: tuple[Reason, str] | None = None
        """Why PgBouncer last refused a login for the server's reason (``auth``,
        ``config``), until a connection opens (see :meth:`acquire_for_run`)."""

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

    async def acquire_for_run(self, deadline: float) -> Any:
        """The run's connection. Once PgBouncer has passed on the server's refusal of a
        login (no such database, a user the server rejects), it holds new logins of that
        pool until it tries the server again (``server_login_retry``, 15 s): a run that
        waits for it then fails for the reason the refusal gave, not as a timeout."""
        held = self.refused_login
        try:
            if held is None:
                conn = await self.acquire()
            else:
                margin = min(LOGIN_MARGIN, self.target.timeout_s / 10)
                async with asyncio.timeout_at(deadline - margin):
                    conn = await self.acquire()
        except TimeoutError as exc:
            if held is None:
                raise
            message = f"{held[1]} (PgBouncer holds new logins until it retries)"
            raise ProbeError(held[0], message) from exc
        except asyncpg.PostgresError as exc:
            refusal = _pooler_reason(exc)
            self.refused_login = None
            if refusal == "auth" or refusal == "config":
                self.refused_login = (refusal, str(exc))
            raise
        self.refused_login = None
        return conn

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


def _sqlstate_reason(exc: asyncpg.PostgresError) -> Reason:
    """The reason a server error's SQLSTATE (its class, or the exact code) gives."""
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


def classify(exc: BaseException) -> Reason | None:
    """Map asyncpg exceptions (SQLSTATE classes, PgBouncer's errors) to reasons."""
    if pooler := _pooler_reason(exc):
        return pooler
    if isinstance(exc, asyncpg.PostgresError):
        return _sqlstate_reason(exc)
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return "protocol"  # asyncpg could not make sense of what the peer sent
    if isinstance(exc, ConnectionError):
        return "protocol"  # hung up, or answered the SSLRequest with nonsense (not refused)
    if isinstance(exc, OSError) and exc.errno is None and "refused" in str(exc).lower():
        return "refused"  # several addresses tried, all refused
    return None
