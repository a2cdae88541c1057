"""Helpers for the event-bus tests: the runtime stand-in and one-shot probe runs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from exporter import config as cfg
from exporter.probe import ProbeResult, Reason
from exporter.probes.eventbus import KIND, EventBusState, EventBusTarget
from exporter.scheduler import run_probe
from exporter.snapshot import assemble, render
from stack.sim_eventbus import EventBusSim

from .helpers import Series, parse


@pytest.fixture
async def sim() -> AsyncIterator[EventBusSim]:
    """A stand-in with no background traffic: tests publish events themselves."""
    s = await EventBusSim(rate=0, capacity=10, handlers=2).start()
    yield s
    await s.stop()


def target_from(yaml_text: str) -> EventBusTarget:
    """The single eventbus target of a config text (defaults filled in)."""
    target = cfg.parse(yaml_text, "cfg.yml").targets["eventbus"][0]
    assert isinstance(target, EventBusTarget)
    return target


@dataclass
class Outcome:
    """One probe run: its series (parsed exposition), failure reason and error text."""

    series: Series
    reason: Reason | None
    error: str
    duration: float


async def probe_once(target: EventBusTarget, state: EventBusState) -> Outcome:
    """Run the probe once under the target's timeout, as the scheduler does."""
    result, reason, exc, duration = await run_probe(
        KIND, target, state, target.timeout_s, time.time
    )
    text = ""
    if isinstance(result, ProbeResult):
        by_family = {name: [chunk] for name, chunk in render(result.samples).items()}
        text = assemble(by_family)
    return Outcome(parse(text), reason, str(exc) if exc else "", duration)
