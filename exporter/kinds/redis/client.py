"""Redis connections: bounded by the target's read budget, TLS arguments, error reasons,
and the clients a Redis target opens to its server, Sentinels and cluster seeds.

``tls_kwargs``, ``bounded_client`` and ``classify`` are shared with the event-bus canary.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable, Mapping
from typing import Any, cast

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ...budget import BoundedProtocol, ReadBudget
from ...model import TLSConfig, parse_host_port
from ...probe import Reason
from .config import RedisTarget

LINES_PER_TURN = 256
"""Reply lines parsed between two turns of the event loop (see ``ReplyReader``)."""
PEER_SHARE = 1 / 3
"""Of a run's deadline, what one Sentinel or cluster seed may take to answer."""
CLIENT_NAME = "tradeops-exporter"


def tls_kwargs(tls: TLSConfig | None) -> dict[str, Any]:
    """redis-py's TLS arguments (it takes files and flags, not an SSLContext)."""
    if tls is None:
        return {}
    return {
        "ssl": True,
        "ssl_ca_certs": str(tls.ca_file) if tls.ca_file else None,
        "ssl_certfile": str(tls.cert_file) if tls.cert_file else None,
        "ssl_keyfile": str(tls.key_file) if tls.key_file else None,
        "ssl_cert_reqs": "none" if tls.insecure_skip_verify else "required",
        "ssl_check_hostname": not tls.insecure_skip_verify,
    }


class ReplyReader(asyncio.StreamReader):
    """The stream a bounded connection's parser reads: it gives the event loop a
    turn every ``LINES_PER_TURN`` lines.

    redis-py's parser costs a few microseconds per reply element, so 16 KiB of
    ``:1`` elements (4096 of them) held the loop 12 ms on an idle machine and
    40-50 ms on a busy one; counted in lines, a slice stays short whatever the
    elements' size.
    """

    _lines = 0

    async def readline(self) -> bytes:
        """One line, after a turn of the loop every ``LINES_PER_TURN`` calls."""
        self._lines += 1
        if self._lines % LINES_PER_TURN == 0:
            await asyncio.sleep(0)
        return await super().readline()


class BoundedConnection(Connection):
    """A redis-py connection whose socket goes through ``BoundedProtocol``.

    ``budget`` is called each time a socket is opened and returns the run's
    ``ReadBudget`` (a probe state's ``budget`` is replaced before its first run,
    so the connection asks for it rather than keeping the one it was built with).
    """

    def __init__(self, *, budget: Callable[[], ReadBudget], **kwargs: Any) -> None:
        self._budget = budget
        super().__init__(**kwargs)

    async def _connect(self) -> None:
        """``asyncio.open_connection`` with ``BoundedProtocol`` between the transport
        and the stream reader; TCP options as redis-py sets them."""
        loop = asyncio.get_running_loop()
        reader = ReplyReader(loop=loop)
        inner = asyncio.StreamReaderProtocol(reader, loop=loop)
        budget = self._budget()
        async with asyncio.timeout(self.socket_connect_timeout):
            transport, _ = await loop.create_connection(
                lambda: BoundedProtocol(inner, budget), **self._connection_arguments()
            )
        writer = asyncio.StreamWriter(transport, inner, reader, loop)
        try:
            self._set_socket_options(transport.get_extra_info("socket"))
        except (OSError, TypeError):
            transport.abort()
            raise
        self._reader = reader
        self._writer = writer

    def _set_socket_options(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.socket_keepalive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            options = cast(Mapping[int, int | bytes], self.socket_keepalive_options)
            for option, setting in options.items():
                sock.setsockopt(socket.SOL_TCP, option, setting)


class BoundedSSLConnection(BoundedConnection, SSLConnection):
    """``BoundedConnection`` over TLS: the budget counts the decrypted replies."""


def bounded_client(
    budget: Callable[[], ReadBudget],
    address: str,
    tls: TLSConfig | None = None,
    **options: Any,
) -> aioredis.Redis:
    """A ``redis.asyncio.Redis`` whose every connection charges ``budget()``.

    ``options`` are redis-py connection and pool arguments (``db``, ``username``,
    ``password``, ``socket_timeout``, ``socket_connect_timeout``, ``retry``,
    ``client_name``, ``max_connections``...). ``aclose()`` closes the pool too.
    """
    host, port = parse_host_port(address)
    ssl_options = {k: v for k, v in tls_kwargs(tls).items() if k != "ssl"}
    pool = aioredis.ConnectionPool(
        connection_class=BoundedSSLConnection if tls else BoundedConnection,
        host=host,
        port=port,
        budget=budget,
        **ssl_options,
        **options,
    )
    return aioredis.Redis.from_pool(pool)


def server_client(
    target: RedisTarget, address: str, budget: Callable[[], ReadBudget]
) -> aioredis.Redis:
    """The client of the server at ``address`` (the target's, or the master its
    Sentinels name), with the target's database, credentials and TLS."""
    return bounded_client(
        budget,
        address,
        target.tls,
        db=target.db,
        username=target.username,
        password=target.password_value(),
        socket_connect_timeout=target.timeout_s,
        socket_timeout=target.timeout_s,
        retry=Retry(NoBackoff(), 1),  # one reconnect: a pooled socket may be stale
        max_connections=4,
        client_name=CLIENT_NAME,
    )


def peer_client(target: RedisTarget, address: str, budget: ReadBudget) -> aioredis.Redis:
    """A Sentinel's or a cluster seed's client, charging a budget of its own: it
    answers within ``PEER_SHARE`` of the target's timeout, with a reconnect for a
    stale socket but no second wait for a hung peer."""
    return bounded_client(
        lambda: budget,
        address,
        target.tls,
        username=target.username,
        password=target.password_value(),
        socket_connect_timeout=target.timeout_s * PEER_SHARE,
        socket_timeout=target.timeout_s * PEER_SHARE,
        retry=Retry(NoBackoff(), 1, supported_errors=(rexc.ConnectionError,)),
        max_connections=2,
        client_name=CLIENT_NAME,
    )


_UNREACHABLE = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)


def classify(exc: BaseException) -> Reason | None:
    """Map redis-py exceptions to reasons, by type and cause, never by message:
    redis-py's messages carry the address, and a host named ``cache-timeout`` must
    not turn a reset connection into a timeout."""
    if isinstance(exc, rexc.AuthenticationError | rexc.AuthorizationError | rexc.NoPermissionError):
        return "auth"
    if isinstance(exc, rexc.ResponseError) and any(
        s in str(exc) for s in ("NOAUTH", "WRONGPASS", "NOPERM")
    ):
        return "auth"
    causes = _causes(exc)
    if any(isinstance(c, OSError) and c.errno in _UNREACHABLE for c in causes):
        return "refused"
    if any(isinstance(c, socket.gaierror) for c in causes):
        return "other"  # the name does not resolve: nothing was reached to refuse or garble
    if isinstance(exc, rexc.TimeoutError):
        return "timeout"
    protocol = rexc.ConnectionError | rexc.InvalidResponse | rexc.ResponseError | rexc.DataError
    if isinstance(exc, protocol):
        return "protocol"
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from or during (redis-py wraps socket errors)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out
