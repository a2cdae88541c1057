"""The HTTP server's connection guard: what one client may hold of the server.

aiohttp closes a keep-alive connection after its idle timeout, but it has no
deadline for the request headers (a client sending one byte a second keeps its
connection for ever) and no cap on connections. ``GuardedSite`` adds both, from
the moment a connection is accepted, before any TLS handshake.

From the socket up, one connection is: ``_Connection`` (counted against the cap,
timed, aborted), asyncio's own TLS layer when serving HTTPS, and ``_Handler``
(aiohttp's request handler, telling its connection where each request begins and
where its headers end). ``ConnectionLimiter`` keeps the counts, logs reaching the
cap once, and renders the ``tradeops_exporter_http_connections*`` series;
``start_http`` serves an aiohttp application this way.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from asyncio import sslproto
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from .catalogue import core as C
from .catalogue.core import HttpCloseReason
from .logs import log
from .probe import Sample
from .render import render
from .snapshot import SnapshotStore

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_IDLE_TIMEOUT = 120.0
DEFAULT_MAX_CONNECTIONS = 256
SECTION = "http"
"""The store section of the connection series."""


@dataclass(frozen=True, slots=True)
class HTTPLimits:
    """What one HTTP client may hold of the server (docs/configuration.md, "HTTP server")."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    """Seconds from accepting a connection (TLS handshake included), or from the first
    byte of a later request on it, until that request's headers are complete."""
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    """Seconds a keep-alive connection may wait for its next request, and a response
    may wait for the client to read on."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Connections open at once; a connection accepted beyond it is closed at once."""


class ConnectionLimiter:
    """Counts open connections against ``limit``, and the connections the server closed
    by why; logs when the limit is reached and left.

    One line when the limit is first reached and one when the count has fallen a
    tenth below it (at least one) again, not a line per connection closed.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.closed: dict[HttpCloseReason, int] = dict.fromkeys(C.HTTP_CLOSE_REASONS, 0)
        self._episode = 0  # closed on accept since the limit was last reached
        self._published: tuple[int, ...] = ()

    def admit(self) -> bool:
        """Count a new connection; False (and counted as closed for the limit) when the
        limit is reached."""
        if self.open < self.limit:
            self.open += 1
            return True
        if self._episode == 0:
            log(
                logging.WARNING,
                "HTTP connection limit reached; closing new connections on accept",
                max_connections=self.limit,
            )
        self._episode += 1
        self.closed["limit"] += 1
        return False

    def release(self) -> None:
        """An admitted connection has closed."""
        self.open -= 1
        if self._episode and self.open <= self.limit - max(1, self.limit // 10):
            log(
                logging.INFO,
                "HTTP connections below the limit again",
                max_connections=self.limit,
                closed_on_accept=self._episode,
            )
            self._episode = 0

    def samples(self) -> list[Sample]:
        """The connection series: open now, the limit, closes by why."""
        return [
            Sample(C.HTTP_CONNECTIONS, (), float(self.open)),
            Sample(C.HTTP_CONNECTIONS_LIMIT, (), float(self.limit)),
            *(
                Sample(C.HTTP_CONNECTIONS_CLOSED, (why,), float(n))
                for why, n in self.closed.items()
            ),
        ]

    def publish(self, store: SnapshotStore) -> None:
        """Put the series into their section of ``store`` if a value changed since the
        last time.

        Called on scrape rather than on every accept and close: a flood of connections
        costs no rendering, and an unchanged count keeps the cached body valid.
        """
        state = (self.open, *self.closed.values())
        if state != self._published:
            store.put_section(SECTION, render(self.samples()))
            self._published = state


CONNECTIONS_KEY = web.AppKey("http_connections", ConnectionLimiter)
"""Where ``start_http`` leaves the site's limiter in the application (for /metrics)."""

_Abort = HttpCloseReason | Literal["shutting_down"]


class _Connection(asyncio.Protocol):
    """One accepted TCP connection, below the TLS layer (if any) and aiohttp's handler.

    Counted against the limit; aborted when a request's headers are not complete
    within the header timeout, or when the client has not read on for the idle
    timeout while its response waits (the transport's writing stays paused).
    """

    def __init__(self, site: GuardedSite) -> None:
        self._site = site
        self._transport: asyncio.Transport | None = None
        self._inner: asyncio.BaseProtocol | None = None
        self._headers_due: asyncio.TimerHandle | None = None
        self._reading_due: asyncio.TimerHandle | None = None
        self._counted = False  # its close already counted under a why
        self.serving = False
        """True once aiohttp's handler has the connection (after the TLS handshake)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self._site.limiter.admit():
            transport.abort()
            return
        self._transport = transport
        self._site.connections.add(self)
        self.expect_headers()
        self._inner = self._site.inner_protocol(self)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        inner = self._inner
        if isinstance(inner, asyncio.BufferedProtocol):  # the TLS layer
            view = memoryview(data)
            while view:
                buf = memoryview(inner.get_buffer(len(view)))
                n = min(len(buf), len(view))
                buf[:n] = view[:n]
                inner.buffer_updated(n)
                view = view[n:]
        elif isinstance(inner, asyncio.Protocol):
            inner.data_received(data)

    def eof_received(self) -> bool | None:
        if isinstance(self._inner, asyncio.Protocol | asyncio.BufferedProtocol):
            return self._inner.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is None:  # closed on accept
            return
        self._transport = None
        self._cancel_timers()
        self._site.connections.discard(self)
        self._site.limiter.release()
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._reading_due is None:
            self._reading_due = asyncio.get_running_loop().call_later(
                self._site.limits.idle_timeout, self.abort, "not_reading"
            )
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._reading_due is not None:
            self._reading_due.cancel()
            self._reading_due = None
        if self._inner is not None:
            self._inner.resume_writing()

    def expect_headers(self) -> None:
        """A request has begun (or the connection was accepted): start its header deadline."""
        if self._headers_due is None and self._transport is not None:
            self._headers_due = asyncio.get_running_loop().call_later(
                self._site.limits.header_timeout, self.abort, "header_timeout"
            )

    def headers_complete(self) -> None:
        """The request's headers have arrived: no deadline until the next one begins."""
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def closing(self, why: HttpCloseReason) -> None:
        """The server is closing this connection for ``why``: count it and log it at
        debug level with the peer's address (once per connection)."""
        if self._counted or self._transport is None:
            return
        self._counted = True
        self._site.limiter.closed[why] += 1
        peer = self._transport.get_extra_info("peername")
        log(logging.DEBUG, "closing an HTTP connection", why=why, peer=str(peer))

    def abort(self, why: _Abort) -> None:
        """Close the connection at once (no TLS close, no lingering)."""
        if self._transport is None:
            return
        if why != "shutting_down":
            self.closing(why)
        self._transport.abort()

    def _cancel_timers(self) -> None:
        for handle in (self._headers_due, self._reading_due):
            if handle is not None:
                handle.cancel()
        self._headers_due = self._reading_due = None


class _Handler(RequestHandler):
    """aiohttp's request handler, telling its connection when a request's headers are
    complete, when the first bytes of a new one arrive, and when its idle keep-alive
    timeout closes it.

    Reads ``_request_count`` (requests parsed so far) and wraps ``_process_keepalive``
    (the idle timer's callback) of aiohttp 3.14's handler; the tests of the header and
    idle timeouts fail if a new aiohttp changes them.
    """

    __slots__ = ("_answered", "_connection")

    def __init__(self, manager: Server, connection: _Connection, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._connection = connection
        self._answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._connection.serving = True
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:
            self._connection.headers_complete()
        elif data and self._request_count == self._answered:  # between requests
            self._connection.expect_headers()

    def _process_keepalive(self) -> None:
        closed = self._force_close
        super()._process_keepalive()
        if self._force_close and not closed:
            self._connection.closing("idle_timeout")

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._answered += 1


def _consume(waiter: asyncio.Future[None]) -> None:
    if not waiter.cancelled():
        waiter.exception()  # a failed handshake: already handled by closing the connection


class GuardedSite(web.BaseSite):
    """A TCP site (HTTP or HTTPS) whose connections follow ``HTTPLimits``.

    The TLS layer is asyncio's own, the one ``loop.create_server(ssl=...)`` would put
    between the socket and the handler; it is set up here so that a connection is
    counted and timed from its accept, not from the end of its handshake (the loop's
    TLS server also allocates 256 KiB per connection before it, uncounted).
    """

    __slots__ = ("_bound", "_host", "_port", "connections", "limiter", "limits")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        limits: HTTPLimits,
        ssl_context: ssl.SSLContext | None = None,
        limiter: ConnectionLimiter | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._bound = port
        self.limits = limits
        self.limiter = limiter or ConnectionLimiter(limits.max_connections)
        self.connections: set[_Connection] = set()

    @property
    def name(self) -> str:
        """The site's URL."""
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._bound}"

    @property
    def port(self) -> int:
        """The bound port (the requested one before ``start``)."""
        return self._bound

    async def start(self) -> None:
        """Listen."""
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = server = await loop.create_server(
            lambda: _Connection(self), self._host, self._port, backlog=self._backlog
        )
        self._bound = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening; close connections that never reached the handler (aiohttp's
        shutdown drains the others)."""
        await super().stop()
        for connection in list(self.connections):
            if not connection.serving:
                connection.abort("shutting_down")

    def inner_protocol(self, connection: _Connection) -> asyncio.BaseProtocol:
        """aiohttp's handler for ``connection``, behind the TLS layer when there is one."""
        handler = self._handler(connection)
        if self._ssl_context is None:
            return handler
        return self._tls(handler, self._ssl_context)

    def _handler(self, connection: _Connection) -> _Handler:
        server = self._runner.server
        assert server is not None
        return _Handler(
            server,
            connection,
            loop=asyncio.get_running_loop(),
            keepalive_timeout=self.limits.idle_timeout,
            access_log=None,
        )

    def _tls(self, handler: _Handler, context: ssl.SSLContext) -> sslproto.SSLProtocol:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        waiter.add_done_callback(_consume)
        return sslproto.SSLProtocol(
            loop,
            handler,
            context,
            waiter,
            server_side=True,
            ssl_shutdown_timeout=self.limits.header_timeout,
        )


async def start_http(
    app: web.Application,
    host: str,
    port: int,
    limits: HTTPLimits,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[web.AppRunner, GuardedSite]:
    """Serve ``app`` on host:port under ``limits``; ``runner.cleanup()`` stops it.

    The site's limiter goes into ``app`` under ``CONNECTIONS_KEY``. A request whose
    client hangs up is cancelled (an on-demand probe stops and frees its slot), as the
    in-process test server does too.
    """
    limiter = app[CONNECTIONS_KEY] = ConnectionLimiter(limits.max_connections)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
    await runner.setup()
    site = GuardedSite(runner, host, port, limits, ssl_context, limiter)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site
