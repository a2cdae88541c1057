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

from .catalogue import core as C
from .config import Config
from .logs import log, log_change
from .model import TargetBase
from .probe import REASONS, ProbeError, ProbeKind, ProbeState, Reason, Sample
from .redact import error_text
from .runs import RunOutcome, render_run, run_and_render, run_probe
from .snapshot import SnapshotStore, TargetSnapshot

STOP_GRACE_SECONDS = 2.0
MAX_BACKOFF_SECONDS = 60.0

__all__ = ["RunOutcome", "Runner", "Scheduler", "TargetView", "run_probe"]


@dataclass(frozen=True, slots=True)
class TargetView:
    """What the scheduler knows of one target, as of one moment: a read-only row."""

    kind: str
    target: str
    interval: float
    """Seconds between runs."""
    up: bool
    """True when the last run succeeded."""
    last_reason: Reason | None
    """Why the last run failed (None after a success, and before the first run)."""
    last_success: float | None
    """Unix time the last successful run finished."""
    runs: int
    """Runs started."""
    completed: int
    """Runs finished."""


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

    def view(self) -> TargetView:
        """The target's row, as of now."""
        return TargetView(
            self.kind.name,
            self.target.name,
            self.target.interval_s,
            self.up,
            self.last_reason,
            self.last_success,
            self.runs,
            self.completed,
        )

    async def run_once(self) -> None:
        """One probe run: result (or failure) rendered into the store."""
        self.runs += 1
        if isinstance(self.state, _BrokenState):
            error = ProbeError("config", self.state.error)
            outcome = RunOutcome([], "config", error, 0.0)
            done = await render_run(self.kind, outcome, self._finished, self.now())
        else:
            done = await run_and_render(
                self.kind, self.target, self.state, self.target.timeout_s, self._finished, self.now
            )
        self.store.put(TargetSnapshot(self.kind.name, self.target.name, done.text))

    def _finished(self, outcome: RunOutcome, finished: float) -> list[Sample]:
        """Count the finished run, log a change of state, and emit the framework series."""
        self.completed += 1
        if outcome.reason is None:
            self.last_success = finished
        else:
            self.errors[outcome.reason] += 1
        self._log_transition(outcome.reason, outcome.error)
        self.up = outcome.ok
        self.last_reason = outcome.reason
        return self._framework_samples(outcome.duration, finished)

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
        """Converge on ``config``: unchanged targets keep their loop and state; the
        changed and removed ones are stopped concurrently, as on shutdown."""
        wanted = {(k.name, t.name): (k, t) for k, t in config.all_targets()}
        leaving = [
            key
            for key, runner in self.runners.items()
            if key not in wanted or wanted[key][1] != runner.target
        ]
        await asyncio.gather(*(self.runners[key].stop() for key in leaving))
        for key in leaving:
            self.store.remove(*key)
            del self.runners[key]
        for key, (kind, target) in wanted.items():
            if key not in self.runners:
                runner = Runner(kind, target, self.store, self.now)
                self.runners[key] = runner
                runner.start()
        self.runners = {key: self.runners[key] for key in wanted}  # in config order

    def view(self) -> list[TargetView]:
        """Every target's row, in config order."""
        return [runner.view() for runner in self.runners.values()]

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
