"""On-demand probes (``/probe?module=M&target=T``, the multi-target pattern): the
target made from its module's template, a deadline from the scrape timeout header,
and one run, with a state of its own, through the path scheduled runs take
(``exporter.runs``)."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from typing import Any

from .catalogue import core as C
from .config import ModuleConfig
from .kinds import KINDS
from .logs import log
from .model import MIN_INTERVAL_SECONDS, TargetBase
from .probe import ProbeError, ProbeKind, Sample
from .redact import error_text
from .runs import FrameworkSeries, RenderedRun, RunOutcome, render_run, run_and_render
from .snapshot import assemble

PROBE_TIMEOUT_MARGIN_SECONDS = 0.5
MAX_CONCURRENT_PROBES = 16
PROBE_CLOSE_SECONDS = 0.25
"""How long an on-demand probe's connections may take to close after its run."""


class ProbeRequestError(Exception):
    """A /probe request that cannot run: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def label_safe(target: str) -> str:
    """A config-valid stand-in name for a /probe target (the label keeps the target)."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", target)[:128].lstrip("_.:-") or "target"


def scrape_timeout(header: str) -> float:
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


def probe_timeout(module: ModuleConfig, header: str | None) -> float:
    """An on-demand probe's deadline in seconds from the request's arrival: the module's
    timeout, shortened to the scrape timeout header minus the margin (to half the header
    when that is shorter than twice the margin); a header of zero or less is ignored."""
    timeout = module.timeout
    if header:
        seconds = scrape_timeout(header)
        if seconds > 0:
            timeout = min(timeout, max(seconds - PROBE_TIMEOUT_MARGIN_SECONDS, seconds / 2))
    return timeout


def target_spec(module: ModuleConfig, target: str, timeout: float) -> TargetBase:
    """The module's template with ``target`` filled in, for one run of ``timeout``;
    raises ProbeRequestError (400) when the result is no valid target."""
    kind = KINDS[module.kind]
    params: dict[str, Any] = {
        **module.params,
        "name": label_safe(target),  # URLs are valid targets but not valid config names
        kind.address_field: target,
        "interval": max(timeout * 2, MIN_INTERVAL_SECONDS),  # one run: never repeated
        "timeout": timeout,
    }
    try:
        spec: TargetBase = kind.target_model.model_validate(params)
    except ValueError as exc:
        raise ProbeRequestError(400, f"bad target: {error_text(exc)}") from None
    return spec.model_copy(update={"name": target})


class OnDemand:
    """Runs on-demand probes, at most ``MAX_CONCURRENT_PROBES`` at once (on the probe
    loop, as the scheduler's runs)."""

    def __init__(self) -> None:
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_PROBES)

    async def run(
        self, module_name: str, module: ModuleConfig, target: str, timeout: float, arrived: float
    ) -> tuple[str, bool]:
        """One run of ``module`` against ``target`` until ``arrived + timeout`` (loop
        time): its exposition text and whether it succeeded."""
        kind = KINDS[module.kind]
        spec = target_spec(module, target, timeout)
        loop = asyncio.get_running_loop()
        lbl = (kind.name, target)

        def framework(outcome: RunOutcome, finished: float) -> list[Sample]:
            duration = loop.time() - arrived  # the wait for a slot included
            return [
                Sample(C.PROBE_SUCCESS, lbl, 1.0 if outcome.ok else 0.0),
                Sample(C.PROBE_DURATION, lbl, duration),
            ]

        done = await self._in_slot(kind, spec, arrived, arrived + timeout, framework)
        if not done.outcome.ok:
            log(
                logging.INFO,
                "on-demand probe failed",
                module=module_name,
                kind=kind.name,
                target=target,
                reason=done.outcome.reason,
                error=error_text(done.outcome.error) if done.outcome.error else "",
            )
        return assemble({name: [text] for name, text in done.text.items()}), done.outcome.ok

    async def _in_slot(
        self,
        kind: ProbeKind[Any, Any],
        spec: TargetBase,
        arrived: float,
        deadline: float,
        framework: FrameworkSeries,
    ) -> RenderedRun:
        """The run, once a slot is free; a timeout when none comes free in time."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        except TimeoutError:
            outcome = RunOutcome([], "timeout", _no_slot(loop.time() - arrived), 0.0)
            return await render_run(kind, outcome, framework, 0.0)
        try:
            return await _run_once(kind, spec, deadline, framework)
        finally:
            self._slots.release()


def _no_slot(waited: float) -> ProbeError:
    return ProbeError(
        "timeout",
        f"no on-demand probe slot came free in {waited:.3g}s, before the deadline"
        f" ({MAX_CONCURRENT_PROBES} probes were running)",
    )


async def _run_once(
    kind: ProbeKind[Any, Any], spec: TargetBase, deadline: float, framework: FrameworkSeries
) -> RenderedRun:
    """One run until ``deadline`` (loop time) with a state of its own, closed afterwards
    (briefly: the answer is due)."""
    try:
        state = kind.new_state(spec)
    except Exception as exc:
        raise ProbeRequestError(400, f"bad target: {error_text(exc)}") from None
    timeout = deadline - asyncio.get_running_loop().time()
    try:
        return await run_and_render(kind, spec, state, timeout, framework)
    finally:
        try:
            async with asyncio.timeout(PROBE_CLOSE_SECONDS):
                await state.aclose()
        except Exception as exc:
            log(logging.DEBUG, "closing an on-demand probe's state failed", error=error_text(exc))
