"""The running exporter: configuration (and reloads), scheduler, snapshots,
on-demand probes and the exporter's own series."""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from collections import Counter
from collections.abc import Callable

from . import config as cfg
from .calendar_series import CalendarRefresher
from .calendars import build_calendars
from .catalogue import core as C
from .config import Config, ConfigError, ModuleConfig
from .logs import log
from .on_demand import OnDemand, ProbeRequestError, probe_timeout
from .probe import Sample
from .render import render
from .scheduler import Scheduler
from .snapshot import SnapshotStore
from .version import VERSION, bundle_version

__all__ = ["SECTION", "Exporter", "ProbeRequestError"]

SECTION = "exporter"
"""The store section of the exporter's own series."""


class Exporter:
    """Ties the pieces together; the HTTP server and the CLI drive it.

    It lives on one event loop, the probe loop: its methods, the scheduler and the
    config are used there only (the HTTP thread's handlers submit their calls through
    ``exporter.server.ProbeLoop``). ``store`` alone is read from other threads.
    """

    def __init__(self, config_path: str, now: Callable[[], float] = time.time) -> None:
        self.config_path = config_path
        self.config: Config | None = None
        self.store = SnapshotStore()
        self.scheduler = Scheduler(self.store)
        self.calendars = CalendarRefresher(self.store, now)
        self.started = time.time()
        self.reload_ok = False
        self.reload_time: float | None = None
        self.probe_requests: Counter[tuple[str, str]] = Counter()
        self._on_demand = OnDemand()
        self._reload_lock = asyncio.Lock()
        self.refresh_self_metrics()

    async def start(self, config: Config) -> None:
        """Start probing with an already validated config."""
        await self._apply(config)

    async def _apply(self, config: Config) -> None:
        await self.scheduler.apply(config)
        await self.calendars.configure(
            build_calendars(config.calendars),
            ((k.name, t.name, t.calendar) for k, t in config.all_targets()),
        )
        self.config = config
        self.reload_ok = True
        self.reload_time = time.time()
        self.refresh_self_metrics()

    def _load_for_reload(self) -> Config:
        """The new config; raises ConfigError, also when it would remove every running
        target without saying so (an empty, truncated or commented-out file)."""
        new = cfg.load(self.config_path)
        running = len(self.config.all_targets()) if self.config is not None else 0
        if running and not new.all_targets() and not new.allow_empty:
            raise ConfigError(
                self.config_path,
                [
                    (
                        "",
                        f"no targets: this reload would remove every running target ({running});"
                        " if that is intended, say so with 'allow_empty: true' at the top level",
                    )
                ],
            )
        return new

    async def reload(self) -> tuple[bool, str]:
        """Re-read the config file; on error keep the running config. (ok, message)."""
        async with self._reload_lock:
            try:
                new = self._load_for_reload()
            except ConfigError as exc:
                self.reload_ok = False
                self.refresh_self_metrics()
                for line in exc.lines():
                    log(
                        logging.ERROR,
                        "config reload failed; keeping the running config",
                        problem=line,
                    )
                return False, str(exc)
            await self._apply(new)
            log(logging.INFO, "config reloaded", targets=len(new.all_targets()))
            return True, "config reloaded"

    async def stop(self) -> None:
        """Stop every probe loop and the calendar task, and close connections."""
        await self.calendars.stop()
        await self.scheduler.stop()

    def ready(self) -> bool:
        """Config loaded and every target probed at least once."""
        return self.config is not None and self.scheduler.ready()

    def refresh_self_metrics(self) -> None:
        """Re-render the exporter's own series into their section of the store (a
        ``/probe`` request or a reload changes them; the targets' part of the body
        stays as it is)."""
        samples: list[Sample] = [
            Sample(C.BUILD_INFO, (VERSION, bundle_version(), platform.python_version()), 1.0),
            Sample(C.START_TIME, (), self.started),
            Sample(C.RELOAD_OK, (), 1.0 if self.reload_ok else 0.0),
            *self.scheduler.samples(),
            *(
                Sample(C.PROBE_REQUESTS, key, float(n))
                for key, n in sorted(self.probe_requests.items())
            ),
        ]
        if self.reload_time is not None:
            samples.append(Sample(C.RELOAD_TIME, (), self.reload_time))
        self.store.put_section(SECTION, render(samples))

    def _module(self, name: str) -> ModuleConfig:
        assert self.config is not None
        module = self.config.modules.get(name)
        if module is None:
            raise ProbeRequestError(400, f"unknown module {name!r}")
        return module

    async def probe(
        self,
        module_name: str,
        target: str,
        scrape_timeout: str | None,
        arrived: float | None = None,
    ) -> str:
        """Run one probe on demand; returns exposition text. Failures are series,
        bad requests raise ProbeRequestError.

        ``arrived`` is when the request arrived (``time.monotonic()``, every loop's
        clock; default now): its deadline counts from then, a wait for a probe slot
        or for this loop's turn included.
        """
        if arrived is None:
            arrived = asyncio.get_running_loop().time()
        try:
            module = self._module(module_name)
        except ProbeRequestError:
            self.probe_requests[("", "bad_request")] += 1
            self.refresh_self_metrics()
            raise
        outcome = "bad_request"
        try:
            if not target:
                raise ProbeRequestError(400, "the target parameter is required")
            if not module.allows(target):
                outcome = "denied"
                raise ProbeRequestError(403, f"target not allowed by module {module_name!r}")
            timeout = probe_timeout(module, scrape_timeout)
            try:
                text, ok = await self._on_demand.run(module_name, module, target, timeout, arrived)
            except asyncio.CancelledError:
                outcome = "failed"  # the client hung up: the run was cancelled
                raise
            outcome = "ok" if ok else "failed"
            return text
        finally:
            self.probe_requests[(module_name, outcome)] += 1
            self.refresh_self_metrics()
