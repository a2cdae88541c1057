"""HTTP endpoints: /metrics, /probe, /-/healthy, /-/ready, /-/reload and an index;
and the site that serves them with limits on what one client may hold.

aiohttp closes a keep-alive connection after its idle timeout, but it has no
deadline for the request headers (a client sending one byte a second keeps its
connection for ever) and no cap on connections. ``GuardedSite`` adds both, from
the moment a connection is accepted, before any TLS handshake.
"""

from __future__ import annotations

import asyncio
import gzip
import html
import logging
import ssl
from asyncio import sslproto
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from .app import Exporter, ProbeRequestError
from .logs import log
from .version import VERSION
from .webconfig import BasicAuth, WebConfig

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EXPORTER_KEY = web.AppKey("exporter", Exporter)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _wants_gzip(request: web.Request) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


def _exposition(request: web.Request, body: bytes) -> web.Response:
    headers = {"Content-Type": CONTENT_TYPE}
    if _wants_gzip(request):
        headers["Content-Encoding"] = "gzip"
        body = gzip.compress(body, compresslevel=1)
    return web.Response(body=body, headers=headers)


async def metrics(request: web.Request) -> web.Response:
    """Serve the cached body built from the pre-rendered snapshots."""
    store = request.app[EXPORTER_KEY].store
    if _wants_gzip(request):
        return web.Response(
            body=store.gzip_body(),
            headers={"Content-Type": CONTENT_TYPE, "Content-Encoding": "gzip"},
        )
    return web.Response(body=store.body(), headers={"Content-Type": CONTENT_TYPE})


async def probe(request: web.Request) -> web.Response:
    """Run one probe on demand (multi-target pattern)."""
    exp = request.app[EXPORTER_KEY]
    try:
        text = await exp.probe(
            request.query.get("module", ""),
            request.query.get("target", ""),
            request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"),
        )
    except ProbeRequestError as exc:
        return web.Response(status=exc.status, text=str(exc) + "\n")
    return _exposition(request, text.encode())


async def healthy(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.Response(text="Healthy.\n")


async def ready(request: web.Request) -> web.Response:
    """Every target has been probed at least once."""
    if request.app[EXPORTER_KEY].ready():
        return web.Response(text="Ready.\n")
    return web.Response(status=503, text="Not ready: first probe runs still pending.\n")


_RELOADS: set[asyncio.Task[tuple[bool, str]]] = set()
"""Reloads under way: a client that hangs up cancels its request, never a reload."""


async def reload(request: web.Request) -> web.Response:
    """Re-read the config; a bad file keeps the running config and answers 500."""
    task = asyncio.ensure_future(request.app[EXPORTER_KEY].reload())
    _RELOADS.add(task)
    task.add_done_callback(_RELOADS.discard)
    ok, message = await asyncio.shield(task)
    return web.Response(status=200 if ok else 500, text=message + "\n")


async def index(request: web.Request) -> web.Response:
    """A small landing page linking the endpoints and listing targets."""
    exp = request.app[EXPORTER_KEY]
    rows = []
    if exp.config is not None:
        for kind, target in exp.config.all_targets():
            runner = exp.scheduler.runners.get((kind.name, target.name))
            state = "up" if runner and runner.up else (runner.last_reason if runner else "-")
            rows.append(
                f"<tr><td>{html.escape(kind.name)}</td>"
                f"<td>{html.escape(target.name)}</td><td>{html.escape(str(state))}</td>"
                f"<td>{target.interval_s:g}s</td></tr>"
            )
        modules = "".join(
            f"<li>{html.escape(n)} ({html.escape(m.kind)})</li>"
            for n, m in exp.config.modules.items()
        )
    else:
        modules = ""
    page = f"""<!doctype html><html><head><title>tradeops exporter</title></head><body>
<h1>tradeops exporter {html.escape(VERSION)}</h1>
<ul><li><a href="metrics">/metrics</a></li><li><a href="-/healthy">/-/healthy</a></li>
<li><a href="-/ready">/-/ready</a></li>
<li>/probe?module=NAME&amp;target=ADDRESS (POST /-/reload re-reads the config)</li></ul>
<h2>Targets</h2><table border="1"><tr><th>kind</th><th>target</th><th>state</th>
<th>interval</th></tr>{"".join(rows)}</table>
<h2>Probe modules</h2><ul>{modules}</ul></body></html>"""
    return web.Response(text=page, content_type="text/html")


def _auth_middleware(auth: BasicAuth) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not auth.check(request.headers.get("Authorization")):
            return web.Response(
                status=401,
                text="Unauthorized\n",
                headers={"WWW-Authenticate": 'Basic realm="tradeops"'},
            )
        return await handler(request)

    return check


def build_app(exporter: Exporter, web_config: WebConfig | None = None) -> web.Application:
    """The aiohttp application."""
    middlewares: list[Middleware] = []
    if web_config is not None and web_config.basic_auth_users:
        middlewares.append(_auth_middleware(BasicAuth(web_config.basic_auth_users)))
    app = web.Application(middlewares=middlewares)
    app[EXPORTER_KEY] = exporter
    app.router.add_get("/", index)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/probe", probe)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    return app


DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_IDLE_TIMEOUT = 120.0
DEFAULT_MAX_CONNECTIONS = 256


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
    """Counts open connections against ``limit``; logs when it is reached and left.

    One line when the limit is first reached and one when the count has fallen a
    tenth below it (at least one) again, not a line per connection closed.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._episode = 0  # closed on accept since the limit was last reached

    def admit(self) -> bool:
        """Count a new connection; False (and not counted) when the limit is reached."""
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
                self._site.limits.idle_timeout, self.abort, "the client stopped reading"
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
                self._site.limits.header_timeout, self.abort, "request headers not complete"
            )

    def headers_complete(self) -> None:
        """The request's headers have arrived: no deadline until the next one begins."""
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def abort(self, why: str) -> None:
        """Close the connection at once (no TLS close, no lingering)."""
        if self._transport is None:
            return
        log(
            logging.DEBUG,
            "closing an HTTP connection",
            why=why,
            peer=str(self._transport.get_extra_info("peername")),
        )
        self._transport.abort()

    def _cancel_timers(self) -> None:
        for handle in (self._headers_due, self._reading_due):
            if handle is not None:
                handle.cancel()
        self._headers_due = self._reading_due = None


class _Handler(RequestHandler):
    """aiohttp's request handler, telling its connection when a request's headers are
    complete and when the first bytes of a new one arrive.

    Reads ``_request_count`` (requests parsed so far) of aiohttp 3.14's handler; the
    tests of the header timeout fail if a new aiohttp changes it.
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
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._bound = port
        self.limits = limits
        self.limiter = ConnectionLimiter(limits.max_connections)
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
                connection.abort("shutting down")

    def inner_protocol(self, connection: _Connection) -> asyncio.BaseProtocol:
        """aiohttp's handler for ``connection``, behind the TLS layer when there is one."""
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        handler = _Handler(
            server,
            connection,
            loop=loop,
            keepalive_timeout=self.limits.idle_timeout,
            access_log=None,
        )
        if self._ssl_context is None:
            return handler
        waiter: asyncio.Future[None] = loop.create_future()
        waiter.add_done_callback(_consume)
        return sslproto.SSLProtocol(
            loop,
            handler,
            self._ssl_context,
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

    A request whose client hangs up is cancelled (an on-demand probe stops and frees
    its slot), as the in-process test server does too.
    """
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True)
    await runner.setup()
    site = GuardedSite(runner, host, port, limits, ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site
