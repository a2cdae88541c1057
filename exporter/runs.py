"""One probe run, from the call of the probe to rendered exposition text: the one
path the scheduler's runs and ``/probe`` requests both take.

``run_probe`` runs under a deadline and turns every failure into a reason;
``render_run`` renders what the run produced, rejects a family its kind did not
declare (the one registry guard: ``ProbeKind.families``), and adds the series the
caller's framework emits for the run (``up`` and its timestamps for a scheduled
target, ``probe_success`` for an on-demand probe).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .budget import ReadBudget
from .model import TargetBase
from .probe import (
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
from .render import render

RENDER_IN_THREAD_ABOVE = 2000
"""Samples; rendering 80k takes ~0.2 s of CPU, which the loop would not answer in."""


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


FrameworkSeries = Callable[[RunOutcome, float], Iterable[Sample]]
"""The caller's own series for a finished run, given its outcome and the wall-clock
time it finished at."""


@dataclass(frozen=True, slots=True)
class RenderedRun:
    """A finished run and its exposition text: family name -> lines."""

    outcome: RunOutcome
    """The run's outcome; a failure when the probe emitted an undeclared family."""
    text: dict[str, str]


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


async def run_and_render(
    kind: ProbeKind[Any, Any],
    target: TargetBase,
    state: ProbeState,
    timeout: float,
    framework: FrameworkSeries,
    now: Callable[[], float] = time.time,
) -> RenderedRun:
    """``run_probe``, then ``render_run``: one run from the probe to its text."""
    outcome = await run_probe(kind, target, state, timeout, now)
    return await render_run(kind, outcome, framework, now())


async def render_run(
    kind: ProbeKind[Any, Any], outcome: RunOutcome, framework: FrameworkSeries, finished: float
) -> RenderedRun:
    """The text of a run that ``finished``: its samples (in a thread when there are
    many, so the loop keeps answering), checked against the kind's families, and
    the framework's series for it.

    A family the kind did not declare fails the run with reason ``other`` (its error
    names the families, and so does the failure's log line) and none of the run's
    own series are served. The check compares the rendered families, not samples.
    """
    if len(outcome.samples) > RENDER_IN_THREAD_ABOVE:
        text = await asyncio.to_thread(render, outcome.samples)
    else:
        text = render(outcome.samples)
    undeclared = text.keys() - kind.family_names
    if undeclared:
        names = ", ".join(sorted(undeclared))
        error = ProbeError(
            "other", f"the probe emitted families its kind does not declare: {names}"
        )
        outcome = RunOutcome([], "other", error, outcome.duration)
        text = {}
    text.update(render(framework(outcome, finished)))
    return RenderedRun(outcome, text)
