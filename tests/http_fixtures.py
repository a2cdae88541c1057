"""The exporter's aiohttp application behind pytest-aiohttp's ``aiohttp_client``.

``exporter_client`` starts an exporter in-process from YAML text and serves the
application ``exporter.server.build_app`` builds through a ``TestClient``: routes,
status codes, headers, bodies, /probe, reloads and basic auth, all on the test's
own loop. What a ``TestClient`` does not serve is the production listener
(``exporter.http_guard.start_http``: connection caps, header and idle deadlines,
TLS) and the HTTP thread (``exporter.server.HTTPThread``); the tests of those use
raw sockets, the real thread or an exporter process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from exporter import config as cfg
from exporter.app import Exporter
from exporter.server import build_app
from exporter.webconfig import WebConfig

from .helpers import Series, parse, value


@dataclass
class ExporterClient:
    """An exporter running in-process and a ``TestClient`` of its application."""

    exporter: Exporter
    http: TestClient[web.Request, web.Application]

    async def get(
        self, path: str, method: str = "GET", **kwargs: Any
    ) -> tuple[int, str, dict[str, str]]:
        """Request a path: (status, body text, headers)."""
        async with self.http.request(method, path, **kwargs) as resp:
            return resp.status, await resp.text(), dict(resp.headers)

    async def scrape(self) -> Series:
        """GET /metrics and parse it."""
        status, text, _ = await self.get("/metrics")
        assert status == 200
        return parse(text)

    async def ran(self, target: str = "cache", kind: str = "redis") -> bool:
        """True once the target has started a probe run."""
        m = await self.scrape()
        return (value(m, "tradeops_probe_runs_total", kind=kind, target=target) or 0) > 0

    async def stop(self) -> None:
        """Close the client and its server, stop the exporter; no task may outlive it."""
        tasks = [r.task for r in self.exporter.scheduler.runners.values() if r.task]
        if self.exporter.calendars.task is not None:
            tasks.append(self.exporter.calendars.task)
        await self.http.close()  # idempotent: ``aiohttp_client`` closes it again
        await self.exporter.stop()
        leaked = [t for t in tasks if not t.done()]
        assert not leaked, f"tasks left running after stop: {leaked}"


ClientFactory = Callable[..., Awaitable[ExporterClient]]
"""``await exporter_client(config_text, web_config=None)``."""


def _config_path(directory: Path) -> Path:
    """``config.yml``, or ``config-N.yml`` for the test's next exporter."""
    path, n = directory / "config.yml", 2
    while path.exists():
        path, n = directory / f"config-{n}.yml", n + 1
    return path


@pytest.fixture
async def exporter_client(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> AsyncIterator[ClientFactory]:
    """Start exporters in-process from YAML text, each application behind an
    ``aiohttp_client``; all are stopped after the test."""
    started: list[ExporterClient] = []

    async def start(config_text: str, web_config: WebConfig | None = None) -> ExporterClient:
        path = _config_path(tmp_path)
        path.write_text(config_text)
        exporter = Exporter(str(path))
        await exporter.start(cfg.load(path))
        try:
            http = await aiohttp_client(build_app(exporter, web_config))
        except BaseException:
            await exporter.stop()
            raise
        run = ExporterClient(exporter, http)
        started.append(run)
        return run

    yield start
    for run in started:
        await run.stop()
