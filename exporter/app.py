"""The running exporter: configuration (and reloads), scheduler, snapshots,
on-demand probes and the exporter's own series."""

from __future__ import annotations

import asyncio
import logging
import math
import platform
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import config as cfg
from .calendar_series import CalendarRefresher
from .calendars import build_calendars
from .catalogue import core as C
from .config import Config, ConfigError, ModuleConfig
from .kinds import KINDS
from .logs import log
from .model import MIN_INTERVAL_SECONDS, TargetBase
from .probe import ProbeError, ProbeKind, Sample
from .redact import error_text
from .render import render
from .scheduler import RunOutcome, Scheduler, run_probe
from .snapshot import SnapshotStore, TargetSnapshot, assemble
from .version import VERSION, bundle_version

PROBE_TIMEOUT_MARGIN_SECONDS = 0.5
MAX_CONCURRENT_PROBES = 16
PROBE_CLOSE_SECONDS = 0.25
"""How long an on-demand probe's connections may take to close after its run."""


def _label_safe(target: str) -> str:
    """A config-valid stand-in name for a /probe target (the label keeps the target)."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", target)[:128].lstrip("_.:-") or "target"


class ProbeRequestError(Exception):
    """A /probe request that cannot run: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _scrape_timeout(header: str) -> float:
    """The ``X-Prometheus-Scrape-Timeout-Seconds`` header's seconds: a finite number
    (``nan`` and ``inf`` parse as floats but are no deadline)."""
    try:
        seconds = float(header)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise ProbeRequestError(
            400,
            "bad X-Prometheus-Scrape-Timeout-Seconds header: expected a finite number of seconds",
        )
    return seconds


def _probe_timeout(module: ModuleConfig, scrape_timeout: str | None) -> float:
    """An on-demand probe's deadline in seconds from the request's arrival: the module's
    timeout, shortened to the scrape timeout header minus the margin (to half the header
    when that is shorter than twice the margin); a header of zero or less is ignored."""
    timeout = module.timeout
    if scrape_timeout:
        header = _scrape_timeout(scrape_timeout)
        if header > 0:
            timeout = min(timeout, max(header - PROBE_TIMEOUT_MARGIN_SECONDS, header / 2))
    return timeout


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
        self._probe_slots = asyncio.Semaphore(MAX_CONCURRENT_PROBES)
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
        """Re-render the exporter's own series into the store (they change rarely)."""
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
        self.store.put(TargetSnapshot("", "", render(samples)))

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
            timeout = _probe_timeout(module, scrape_timeout)
            try:
                text, ok = await self._probe_allowed(module_name, module, target, timeout, arrived)
            except asyncio.CancelledError:
                outcome = "failed"  # the client hung up: the run was cancelled
                raise
            outcome = "ok" if ok else "failed"
            return text
        finally:
            self.probe_requests[(module_name, outcome)] += 1
            self.refresh_self_metrics()

    async def _probe_allowed(
        self, module_name: str, module: ModuleConfig, target: str, timeout: float, arrived: float
    ) -> tuple[str, bool]:
        kind = KINDS[module.kind]
        loop = asyncio.get_running_loop()
        deadline = arrived + timeout
        params: dict[str, Any] = {
            **module.params,
            "name": _label_safe(target),  # URLs are valid targets but not valid config names
            kind.address_field: target,
            "interval": max(timeout * 2, MIN_INTERVAL_SECONDS),  # one run: never repeated
            "timeout": timeout,
        }
        try:
            spec = kind.target_model.model_validate(params).model_copy(update={"name": target})
        except ValueError as exc:
            raise ProbeRequestError(400, f"bad target: {error_text(exc)}") from None
        try:
            async with asyncio.timeout_at(deadline):
                await self._probe_slots.acquire()
        except TimeoutError:
            outcome = RunOutcome([], "timeout", _no_slot(loop.time() - arrived), 0.0)
        else:
            try:
                outcome = await _run_on_demand(kind, spec, deadline)
            finally:
                self._probe_slots.release()
        outcome = replace(outcome, duration=loop.time() - arrived)  # the wait included
        lbl = (kind.name, target)
        if not outcome.ok:
            log(
                logging.INFO,
                "on-demand probe failed",
                module=module_name,
                kind=kind.name,
                target=target,
                reason=outcome.reason,
                error=error_text(outcome.error) if outcome.error else "",
            )
        samples = [
            *outcome.samples,
            Sample(C.PROBE_SUCCESS, lbl, 1.0 if outcome.ok else 0.0),
            Sample(C.PROBE_DURATION, lbl, outcome.duration),
        ]
        return assemble({k: [v] for k, v in render(samples).items()}), outcome.ok


def _no_slot(waited: float) -> ProbeError:
    return ProbeError(
        "timeout",
        f"no on-demand probe slot came free in {waited:.3g}s, before the deadline"
        f" ({MAX_CONCURRENT_PROBES} probes were running)",
    )


async def _run_on_demand(
    kind: ProbeKind[Any, Any], spec: TargetBase, deadline: float
) -> RunOutcome:
    """One run until ``deadline`` (loop time) with a state of its own, closed afterwards
    (briefly: the answer is due)."""
    try:
        state = kind.new_state(spec)
    except Exception as exc:
        raise ProbeRequestError(400, f"bad target: {error_text(exc)}") from None
    try:
        return await run_probe(kind, spec, state, deadline - asyncio.get_running_loop().time())
    finally:
        try:
            async with asyncio.timeout(PROBE_CLOSE_SECONDS):
                await state.aclose()
        except Exception as exc:
            log(logging.DEBUG, "closing an on-demand probe's state failed", error=error_text(exc))
