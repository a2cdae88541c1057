"""HTTP endpoints: /metrics, /probe, /-/healthy, /-/ready, /-/reload and an index,
the aiohttp application that routes them, and the thread that serves it.

The site that serves them, with limits on what one client may hold, is
``exporter.http_guard``; its names used by the command line are re-exported here.

Two loops in the exporter process (docs/architecture.md, "Threads"): the probe loop
(the main thread) owns the scheduler, the probe states and the config; the HTTP loop
(``HTTPThread``) serves requests. /metrics and /-/healthy answer on the HTTP loop
from the thread-safe ``SnapshotStore``, so a scrape never waits for the probe loop's
turns; every other handler runs its work on the probe loop through ``ProbeLoop``.
In-process (the tests' ``TestServer``) both are one loop and ``ProbeLoop`` just
awaits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gzip
import html
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload
from aiohttp.typedefs import Middleware

from .app import Exporter, ProbeRequestError
from .exposition import Body
from .http_guard import (
    CONNECTIONS_KEY,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    GuardedSite,
    HTTPLimits,
    start_http,
)
from .logs import log
from .redact import error_text
from .version import VERSION
from .webconfig import BasicAuth, WebConfig

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "EXPORTER_KEY",
    "HTTPLimits",
    "HTTPThread",
    "ProbeLoop",
    "build_app",
    "start_http",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EXPORTER_KEY = web.AppKey("exporter", Exporter)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


class ProbeLoop:
    """Runs a handler's work on the event loop that owns the scheduler, the probe
    states and the config.

    From another loop (the HTTP thread's) the coroutine is submitted to ``loop``
    and awaited there; cancelling the caller (a client that hung up) cancels it,
    unless ``shield`` is set. On ``loop`` itself, or with ``loop`` None (one loop
    for everything, as in the tests), it is awaited directly.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop
        self._shielded: set[asyncio.Future[Any]] = set()

    def running(self) -> bool:
        """False once the probe loop has stopped (the process is going down)."""
        return self.loop is None or self.loop.is_running()

    async def run(self, coro: Coroutine[Any, Any, T], *, shield: bool = False) -> T:
        """``await coro`` on the probe loop; with ``shield``, the caller's cancellation
        leaves it running to its end."""
        loop = self.loop
        here = loop is None or loop is asyncio.get_running_loop()
        if here and not shield:
            return await coro
        if here:
            future: asyncio.Future[T] = asyncio.ensure_future(coro)
        else:
            assert loop is not None
            try:
                submitted = asyncio.run_coroutine_threadsafe(coro, loop)
            except RuntimeError:  # the probe loop is closed: shutting down
                coro.close()
                raise web.HTTPServiceUnavailable(text="shutting down\n") from None
            future = asyncio.wrap_future(submitted)
        if not shield:
            return await future
        self._shielded.add(future)
        future.add_done_callback(self._shielded.discard)
        return await asyncio.shield(future)


PROBE_LOOP_KEY = web.AppKey("probe_loop", ProbeLoop)


def _wants_gzip(request: web.Request) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


def _exposition(request: web.Request, body: bytes) -> web.Response:
    headers = {"Content-Type": CONTENT_TYPE}
    if _wants_gzip(request):
        headers["Content-Encoding"] = "gzip"
        body = gzip.compress(body, compresslevel=1)
    return web.Response(body=body, headers=headers)


class BodyPayload(Payload):
    """A ``Body`` sent chunk by chunk from the bytes the store holds: never joined,
    and copied only where the transport buffers what the socket did not take."""

    def __init__(self, body: Body) -> None:
        super().__init__(body, content_type=CONTENT_TYPE)
        self._body = body
        self._size = body.length

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The body as text (for aiohttp's ``Response.text``)."""
        return self._body.join().decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Send every chunk, waiting for the transport to drain between them."""
        for chunk in self._body.writes():
            await writer.write(chunk)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        """Send the body; it is never longer than its own Content-Length."""
        await self.write(writer)


async def metrics(request: web.Request) -> web.Response:
    """Serve the body laid out from the pre-rendered snapshots (the HTTP connection
    series brought up to date first, when the app is served by ``start_http``)."""
    store = request.app[EXPORTER_KEY].store
    connections = request.app.get(CONNECTIONS_KEY)
    if connections is not None:
        connections.publish(store)
    headers = {"Content-Type": CONTENT_TYPE}
    zipped = _wants_gzip(request)
    if zipped:
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=BodyPayload(store.exposition(zipped)), headers=headers)


async def probe(request: web.Request) -> web.Response:
    """Run one probe on demand (multi-target pattern), on the probe loop; its deadline
    counts from the request's arrival here."""
    exp = request.app[EXPORTER_KEY]
    arrived = asyncio.get_running_loop().time()  # monotonic, as the probe loop's clock
    try:
        text = await request.app[PROBE_LOOP_KEY].run(
            exp.probe(
                request.query.get("module", ""),
                request.query.get("target", ""),
                request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"),
                arrived,
            )
        )
    except ProbeRequestError as exc:
        return web.Response(status=exc.status, text=str(exc) + "\n")
    return _exposition(request, text.encode())


async def healthy(request: web.Request) -> web.Response:
    """The process is up: the HTTP loop answers and the probe loop runs."""
    if request.app[PROBE_LOOP_KEY].running():
        return web.Response(text="Healthy.\n")
    return web.Response(status=503, text="Not healthy: the probe loop has stopped.\n")


async def _ready(exp: Exporter) -> bool:
    return exp.ready()


async def ready(request: web.Request) -> web.Response:
    """Every target has been probed at least once."""
    if await request.app[PROBE_LOOP_KEY].run(_ready(request.app[EXPORTER_KEY])):
        return web.Response(text="Ready.\n")
    return web.Response(status=503, text="Not ready: first probe runs still pending.\n")


async def reload(request: web.Request) -> web.Response:
    """Re-read the config; a bad file keeps the running config and answers 500. A
    client that hangs up cancels its request, never the reload."""
    exp = request.app[EXPORTER_KEY]
    ok, message = await request.app[PROBE_LOOP_KEY].run(exp.reload(), shield=True)
    return web.Response(status=200 if ok else 500, text=message + "\n")


async def index(request: web.Request) -> web.Response:
    """A small landing page linking the endpoints and listing targets."""
    page = await request.app[PROBE_LOOP_KEY].run(_index_page(request.app[EXPORTER_KEY]))
    return web.Response(text=page, content_type="text/html")


async def _index_page(exp: Exporter) -> str:
    """The landing page (on the probe loop: it reads the config and the scheduler)."""
    rows = "".join(
        f"<tr><td>{html.escape(row.kind)}</td><td>{html.escape(row.target)}</td>"
        f"<td>{html.escape('up' if row.up else str(row.last_reason or '-'))}</td>"
        f"<td>{row.interval:g}s</td></tr>"
        for row in exp.scheduler.view()
    )
    modules = "".join(
        f"<li>{html.escape(n)} ({html.escape(m.kind)})</li>"
        for n, m in (exp.config.modules.items() if exp.config is not None else ())
    )
    page = f"""<!doctype html><html><head><title>tradeops exporter</title></head><body>
<h1>tradeops exporter {html.escape(VERSION)}</h1>
<ul><li><a href="metrics">/metrics</a></li><li><a href="-/healthy">/-/healthy</a></li>
<li><a href="-/ready">/-/ready</a></li>
<li>/probe?module=NAME&amp;target=ADDRESS (POST /-/reload re-reads the config)</li></ul>
<h2>Targets</h2><table border="1"><tr><th>kind</th><th>target</th><th>state</th>
<th>interval</th></tr>{rows}</table>
<h2>Probe modules</h2><ul>{modules}</ul></body></html>"""
    return page


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


def build_app(
    exporter: Exporter, web_config: WebConfig | None = None, probe_loop: ProbeLoop | None = None
) -> web.Application:
    """The aiohttp application; ``probe_loop`` runs the handlers' work on the loop that
    owns ``exporter`` (default: the loop serving the application)."""
    middlewares: list[Middleware] = []
    if web_config is not None and web_config.basic_auth_users:
        middlewares.append(_auth_middleware(BasicAuth(web_config.basic_auth_users)))
    app = web.Application(middlewares=middlewares)
    app[EXPORTER_KEY] = exporter
    app[PROBE_LOOP_KEY] = probe_loop or ProbeLoop()
    app.router.add_get("/", index)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/probe", probe)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    return app


class HTTPThread:
    """Serves an application (``start_http``: the connection guard, TLS) on an event
    loop of its own in a dedicated thread, so a scrape needs only the GIL, never a
    turn of the probe loop.

    ``start`` and ``stop`` are awaited on the probe loop.
    """

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        limits: HTTPLimits,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._serve_args = (app, host, port, limits, ssl_context)
        self._thread = threading.Thread(target=self._main, name="http", daemon=True)
        self._started: concurrent.futures.Future[GuardedSite] = concurrent.futures.Future()
        self._ended: asyncio.Event | None = None
        """Set on the probe loop once the thread's loop has closed."""
        self._probe_loop: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._stop_requested = threading.Event()
        """Seen by a thread still starting, which has no ``_stopping`` to be told by yet."""

    @property
    def thread(self) -> threading.Thread:
        """The HTTP thread."""
        return self._thread

    async def start(self) -> GuardedSite:
        """Start the thread; returns its site once listening (raises what listening
        raised: a port in use, a bad address)."""
        self._probe_loop = asyncio.get_running_loop()
        self._ended = asyncio.Event()
        self._thread.start()
        return await asyncio.wrap_future(self._started)

    async def stop(self) -> None:
        """Stop listening, let requests under way finish (aiohttp's shutdown timeout),
        close the HTTP loop and end the thread. Cancelling this leaves the thread to end
        on its own (it is a daemon: it cannot keep the process alive)."""
        if self._ended is None:  # never started
            return
        self._stop_requested.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already closed
                loop.call_soon_threadsafe(stopping.set)
        await self._ended.wait()
        self._thread.join()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            if self._started.done():
                log(logging.ERROR, "the HTTP server failed", error=error_text(exc))
            _settle(self._started, exc)
        finally:
            assert self._probe_loop is not None and self._ended is not None
            with contextlib.suppress(RuntimeError):  # the probe loop has closed: nobody waits
                self._probe_loop.call_soon_threadsafe(self._ended.set)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_requested.is_set():
            self._stopping.set()
        runner, site = await start_http(*self._serve_args)
        try:
            _settle(self._started, site)
            await self._stopping.wait()
        finally:
            await runner.cleanup()


def _settle(future: concurrent.futures.Future[T], outcome: T | BaseException) -> None:
    """Complete ``future`` unless it is already done (its waiter gave up)."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
