"""Helpers shared by the tests: parsing exposition text, waiting for conditions,
running the exporter in-process against a config."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from exporter import config as cfg
from exporter.app import Exporter
from exporter.server import build_app
from exporter.webconfig import WebConfig

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


FIGURES: list[str] = []
"""Lines a test reports for the end of the run (the conftest prints them in the
terminal summary, so the figures reach the CI log without ``-s``)."""


def report(text: str) -> None:
    """Print ``text`` at the end of the test run."""
    FIGURES.append(text)


@contextmanager
def service_root(prefix: str) -> Iterator[Path]:
    """A directory for services that run as another user (PostgreSQL, pgBackRest),
    outside pytest's temporary root: that root is made private again whenever
    another pytest session starts, and the postgres user must keep reaching it."""
    root = Path(tempfile.mkdtemp(prefix=f"tradeops-{prefix}-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def parse(text: str) -> Series:
    """Exposition text -> {(sample name, labels): value}; raises on malformed text."""
    out: Series = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def value(series: Series, name: str, **labels: str) -> float | None:
    """The value of the series with exactly these labels, or None."""
    return series.get((name, frozenset(labels.items())))


def names(series: Series) -> set[str]:
    """The sample names present."""
    return {name for name, _ in series}


def with_label(series: Series, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every series of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return {lbl: v for (n, lbl), v in series.items() if n == name and want <= lbl}


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, step: float = 0.05
) -> None:
    """Poll ``check`` until it returns True; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(step)


def self_signed_cert(
    directory: Path, name: str = "server", host: str = "IP:127.0.0.1"
) -> tuple[Path, Path]:
    """A throw-away certificate (its own CA) and key: ``(name.crt, name.key)``.
    ``host`` is the subjectAltName, ``IP:…`` or ``DNS:…``."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", f"/CN={host.split(':', 1)[1]}", "-addext", f"subjectAltName={host}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@dataclass
class Running:
    """An exporter running in-process with its HTTP server on a free port."""

    exporter: Exporter
    server: TestServer
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return str(self.server.make_url(""))

    async def get(
        self, path: str, method: str = "GET", **kwargs: Any
    ) -> tuple[int, str, dict[str, str]]:
        """Request a path: (status, body text, headers)."""
        async with self.session.request(method, self.server.make_url(path), **kwargs) as resp:
            return resp.status, await resp.text(), dict(resp.headers)

    async def scrape(self) -> Series:
        """GET /metrics and parse it."""
        status, text, _ = await self.get("/metrics")
        assert status == 200
        return parse(text)

    async def runs(self, target: str = "cache", kind: str = "redis") -> float:
        """How many probe runs the target has started (0 before the first)."""
        m = await self.scrape()
        return value(m, "tradeops_probe_runs_total", kind=kind, target=target) or 0

    async def stop(self) -> None:
        tasks = [r.task for r in self.exporter.scheduler.runners.values() if r.task]
        if self.exporter.calendars.task is not None:
            tasks.append(self.exporter.calendars.task)
        await self.session.close()
        await self.server.close()
        await self.exporter.stop()
        leaked = [t for t in tasks if not t.done()]
        assert not leaked, f"tasks left running after stop: {leaked}"


async def scrape_until(
    run: Running, check: Callable[[Series], bool], timeout: float = 10.0, step: float = 0.05
) -> Series:
    """Scrape until ``check`` holds and return that very scrape: assertions then read
    the probe runs the wait saw, not later ones (which may have failed meanwhile)."""
    found: list[Series] = []

    async def poll() -> bool:
        m = await run.scrape()
        if check(m):
            found.append(m)
            return True
        return False

    await eventually(poll, timeout, step)
    return found[-1]


async def ran(run: Running, target: str = "cache", kind: str = "redis", above: float = 0) -> bool:
    """True once the target has started more than ``above`` probe runs."""
    return await run.runs(target, kind) > above


async def start_exporter(
    config_text: str, directory: Path, web_config: WebConfig | None = None
) -> Running:
    """Write the config, load it, start probing and serving."""
    path = directory / "config.yml"
    n = 2
    while path.exists():  # several exporters in one test: one file each
        path = directory / f"config-{n}.yml"
        n += 1
    path.write_text(config_text)
    config = cfg.load(path)
    exporter = Exporter(str(path))
    await exporter.start(config)
    server = TestServer(build_app(exporter, web_config), host="127.0.0.1")
    await server.start_server()
    return Running(exporter, server, aiohttp.ClientSession())
