"""The one run-and-render path: the probe's series, the registry guard, the
framework's series."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import pytest

from exporter import runs
from exporter.catalogue import core as C
from exporter.probe import HistogramSample, Sample
from exporter.render import render
from exporter.runs import (
    RENDER_IN_THREAD_ABOVE,
    FrameworkSeries,
    RunOutcome,
    render_run,
    run_and_render,
)

from .fake_kind import DECLARED, UNDECLARED, FakeState, FakeTarget, fake_kind


def _framework(calls: list[tuple[RunOutcome, float]]) -> FrameworkSeries:
    def framework(outcome: RunOutcome, finished: float) -> list[Sample]:
        calls.append((outcome, finished))
        return [Sample(C.UP, ("fake", "t"), 1.0 if outcome.ok else 0.0)]

    return framework


async def test_a_run_renders_the_probe_series_and_the_framework_series() -> None:
    calls: list[tuple[RunOutcome, float]] = []
    kind = fake_kind()
    target = FakeTarget(name="t", interval=1, timeout=0.5)
    done = await run_and_render(kind, target, FakeState(), 0.5, _framework(calls), lambda: 42.0)
    assert done.outcome.ok
    assert done.text == {
        DECLARED.name: 'tradeops_fake_value{target="t"} 1\n',
        C.UP.name: 'tradeops_up{kind="fake",target="t"} 1\n',
    }
    assert [(o.ok, finished) for o, finished in calls] == [(True, 42.0)]


async def test_an_undeclared_family_fails_the_run_and_nothing_of_it_is_served() -> None:
    """The guard's error path: no real kind emits a family it did not declare, so a
    fake kind forces it."""
    calls: list[tuple[RunOutcome, float]] = []
    target = FakeTarget(name="t", interval=1, timeout=0.5, stray=True)
    done = await run_and_render(fake_kind(), target, FakeState(), 0.5, _framework(calls))
    assert done.outcome.reason == "other"
    assert done.outcome.samples == []
    assert str(done.outcome.error) == (
        "the probe emitted families its kind does not declare:"
        " tradeops_exporter_build_info, tradeops_fake_stray"
    )
    assert done.text == {C.UP.name: 'tradeops_up{kind="fake",target="t"} 0\n'}
    assert [o.reason for o, _ in calls] == ["other"]


async def test_the_guard_checks_a_failed_run_s_partial_series_too() -> None:
    partial: list[Sample | HistogramSample] = [Sample(UNDECLARED, ("t",), 1.0)]
    outcome = RunOutcome(partial, "timeout", TimeoutError(), 0.1)
    done = await render_run(fake_kind(), outcome, _framework([]), 0.0)
    assert done.outcome.reason == "other" and UNDECLARED.name not in done.text


def test_declared_families_are_computed_once_per_kind() -> None:
    kind = fake_kind(families=(DECLARED, UNDECLARED))
    names = kind.family_names
    assert names == {DECLARED.name, UNDECLARED.name}
    assert kind.family_names is names
    assert fake_kind().family_names == {DECLARED.name}


async def test_many_samples_are_rendered_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[tuple[int, str]] = []

    def spy(samples: Iterable[Sample | HistogramSample]) -> dict[str, str]:
        listed = list(samples)
        threads.append((len(listed), threading.current_thread().name))
        return render(listed)

    monkeypatch.setattr(runs, "render", spy)
    many: list[Sample | HistogramSample] = [
        Sample(DECLARED, (str(i),), float(i)) for i in range(RENDER_IN_THREAD_ABOVE + 1)
    ]
    done = await render_run(fake_kind(), RunOutcome(many, None, None, 0.1), _framework([]), 0.0)
    assert done.text[DECLARED.name] == render(many)[DECLARED.name]
    main = threading.main_thread().name
    assert threads[0][0] == len(many) and threads[0][1] != main  # the probe's: in a thread
    assert threads[1] == (1, main)  # the framework's few: on the loop
