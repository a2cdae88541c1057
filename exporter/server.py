"""HTTP endpoints: /metrics, /probe, /-/healthy, /-/ready, /-/reload and an index,
and the aiohttp application that routes them.

The site that serves them, with limits on what one client may hold, is
``exporter.http_guard``; its names used by the command line are re-exported here.
"""

from __future__ import annotations

import asyncio
import gzip
import html
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from .app import Exporter, ProbeRequestError
from .http_guard import (
    CONNECTIONS_KEY,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    HTTPLimits,
    start_http,
)
from .version import VERSION
from .webconfig import BasicAuth, WebConfig

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "EXPORTER_KEY",
    "HTTPLimits",
    "build_app",
    "start_http",
]

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
    """Serve the cached body built from the pre-rendered snapshots (the HTTP connection
    series brought up to date first, when the app is served by ``start_http``)."""
    store = request.app[EXPORTER_KEY].store
    connections = request.app.get(CONNECTIONS_KEY)
    if connections is not None:
        connections.publish(store)
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
