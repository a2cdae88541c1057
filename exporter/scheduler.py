"""Runs every configured target's probe on its interval, under a deadline.

Each target has a ``Runner``: one asyncio task that loops forever, supervised
so that a crash of the loop itself (never a probe failure, which is a normal
outcome) is logged, counted and restarted with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .budget import ReadBudget
from .catalogue import core as C
from .config import Config
from .logs import log, log_change
from .model import TargetBase
from .probe import (
    REASONS,
    HistogramSample,
    ProbeContext,
    ProbeError,
    ProbeKind,
    ProbeResult,
    ProbeState,
    Reason,
    Sample,
    classify_error,
)
from .redact import error_text
from .render import render
from .snapshot import SnapshotStore, TargetSnapshot

STOP_GRACE_SECONDS = 2.0
RENDER_IN_THREAD_ABOVE = 2000  # samples; rendering 80k takes ~0.2 s of CPU
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What one probe run produced."""

    samples: list[Sample | HistogramSample]
    """The result's samples; for a failed run, only what it still knows (``partial``)."""
    reason: Reason | None
    """None when the run succeeded."""
    error: BaseException | None
    duration: float

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.reason is None


async def run_probe(
    kind: ProbeKind[Any, Any],
    target: TargetBase,
    state: ProbeState,
    timeout: float,
    now: Callable[[], float] = time.time,
) -> RunOutcome:
    """Run one probe under ``timeout``; failures become a reason, never an exception."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + timeout
    budget = _budget(kind, target, state)
    try:
        async with asyncio.timeout_at(deadline):
            result = await kind.probe(target, ProbeContext(state, deadline, now))
        if not isinstance(result, ProbeResult):
            raise ProbeError("other", f"probe returned {type(result).__name__}")
        return RunOutcome(result.samples, None, None, loop.time() - start)
    except Exception as exc:  # every probe failure is reported, never raised
        own = isinstance(exc, ProbeError) and exc.reason == "protocol"  # says why itself
        if budget.exceeded and not own:  # whatever the client made of the aborted connection
            kept = exc.partial if isinstance(exc, ProbeError) else None
            exc = ProbeError("protocol", budget.message(), kept)
        partial = exc.partial.samples if isinstance(exc, ProbeError) and exc.partial else []
        return RunOutcome(partial, classify_error(exc, kind.classify), exc, loop.time() - start)


def _budget(kind: ProbeKind[Any, Any], target: TargetBase, state: ProbeState) -> ReadBudget:
    """The state's budget, sized for the target and reset for a new run."""
    limit = target.response_budget or kind.response_budget
    if "budget" not in vars(state) or state.budget.limit != limit:
        state.budget = ReadBudget(limit)
    state.budget.reset()
    return state.budget


class _BrokenState(ProbeState):
    """Stands in when a target's state cannot be built (bad TLS files, ...)."""

    def __init__(self, exc: Exception) -> None:
        self.error = error_text(exc)


class Runner:
    """Probes one target on its interval and publishes its snapshot."""

    def __init__(
        self,
        kind: ProbeKind[Any, Any],
        target: TargetBase,
        store: SnapshotStore,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.kind = kind
        self.target = target
        self.store = store
        self.now = now
        try:
            self.state: ProbeState = kind.new_state(target)
        except Exception as exc:
            self.state = _BrokenState(exc)
        self.runs = 0
        self.completed = 0
        self.errors: Counter[Reason] = Counter()
        self.restarts = 0
        self.up = False
        self.last_success: float | None = None
        self.last_reason: Reason | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def labels(self) -> tuple[str, str]:
        """The framework labels (kind, target)."""
        return (self.kind.name, self.target.name)

    async def run_once(self) -> None:
        """One probe run: result (or failure) rendered into the store."""
        self.runs += 1
        if isinstance(self.state, _BrokenState):
            error = ProbeError("config", self.state.error)
            outcome = RunOutcome([], "config", error, 0.0)
        else:
            outcome = await run_probe(
                self.kind, self.target, self.state, self.target.timeout_s, self.now
            )
        finished = self.now()
        self.completed += 1
        if outcome.reason is None:
            self.last_success = finished
        else:
            self.errors[outcome.reason] += 1
        self._log_transition(outcome.reason, outcome.error)
        self.up = outcome.ok
        self.last_reason = outcome.reason
        if len(outcome.samples) > RENDER_IN_THREAD_ABOVE:
            data = await asyncio.to_thread(render, outcome.samples)  # keep scrapes answered
        else:
            data = render(outcome.samples)
        data.update(render(self._framework_samples(outcome.duration, finished)))
        self.store.put(TargetSnapshot(self.kind.name, self.target.name, data))

    def _framework_samples(self, duration: float, finished: float) -> list[Sample]:
        lbl = self.labels
        out = [
            Sample(C.UP, lbl, 1.0 if self.last_reason is None else 0.0),
            Sample(C.PROBE_DURATION, lbl, duration),
            Sample(C.PROBE_LAST_RUN, lbl, finished),
            Sample(C.PROBE_RUNS, lbl, float(self.runs)),
            Sample(C.PROBE_INTERVAL, lbl, self.target.interval_s),
            Sample(C.PROBE_TIMEOUT, lbl, self.target.timeout_s),
            Sample(C.LOOP_RESTARTS, lbl, float(self.restarts)),
        ]
        if self.last_success is not None:
            out.append(Sample(C.PROBE_LAST_SUCCESS, lbl, self.last_success))
        out.extend(Sample(C.PROBE_ERRORS, (*lbl, r), float(self.errors[r])) for r in REASONS)
        return out

    def _log_transition(self, reason: Reason | None, exc: BaseException | None) -> None:
        before = self.last_reason if self.completed > 1 else None
        who = {"kind": self.kind.name, "target": self.target.name}
        error = error_text(exc) if exc else ""
        messages = ("probe failed", "target recovered")
        log_change(before, reason, messages, who, reason=reason, error=error)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.target.interval_s
        next_at = loop.time() + random.uniform(0, min(0.25, interval / 10))
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            await self.run_once()
            next_at += interval
            if next_at < loop.time():
                next_at = loop.time() + interval  # overran: skip, do not burst

    async def _supervise(self) -> None:
        backoff = 1.0
        while True:
            try:
                await self._loop()
            except Exception as exc:
                self.restarts += 1
                log(
                    logging.ERROR,
                    "probe loop crashed; restarting",
                    kind=self.kind.name,
                    target=self.target.name,
                    error=error_text(exc),
                    backoff_seconds=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The supervised loop's task, once started."""
        return self._task

    def start(self) -> None:
        """Start the supervised loop."""
        self._task = asyncio.create_task(
            self._supervise(), name=f"probe:{self.kind.name}:{self.target.name}"
        )

    async def stop(self) -> None:
        """Cancel the loop and close the target's connections, within a bounded time."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, STOP_GRACE_SECONDS)
        try:
            await asyncio.wait_for(self.state.aclose(), STOP_GRACE_SECONDS)
        except Exception as exc:
            log(
                logging.DEBUG,
                "closing target state failed",
                kind=self.kind.name,
                target=self.target.name,
                error=error_text(exc),
            )


class Scheduler:
    """Owns one Runner per configured target; applies configs; stops them all."""

    def __init__(self, store: SnapshotStore, now: Callable[[], float] = time.time) -> None:
        self.store = store
        self.now = now
        self.runners: dict[tuple[str, str], Runner] = {}

    async def apply(self, config: Config) -> None:
        """Converge on ``config``: unchanged targets keep their loop and state."""
        wanted = {(k.name, t.name): (k, t) for k, t in config.all_targets()}
        for key, runner in list(self.runners.items()):
            if key not in wanted or wanted[key][1] != runner.target:
                await runner.stop()
                self.store.remove(*key)
                del self.runners[key]
        for key, (kind, target) in wanted.items():
            if key not in self.runners:
                runner = Runner(kind, target, self.store, self.now)
                self.runners[key] = runner
                runner.start()

    async def stop(self) -> None:
        """Stop every runner concurrently."""
        await asyncio.gather(*(r.stop() for r in self.runners.values()))
        self.runners.clear()

    def ready(self) -> bool:
        """True once every target has completed at least one run."""
        return all(r.completed > 0 for r in self.runners.values())

    def samples(self) -> Iterable[Sample]:
        """Exporter-level series: targets per kind."""
        per_kind: Counter[str] = Counter(kind for kind, _ in self.runners)
        for kind, count in sorted(per_kind.items()):
            yield Sample(C.TARGETS, (kind,), float(count))
