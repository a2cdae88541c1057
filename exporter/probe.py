"""The probe contract: what a probe receives, what it returns, how it fails.

A probe is ``async def probe(target, ctx) -> ProbeResult``. It talks to one
target and returns samples. It does not catch its own errors for reporting,
sleep, loop, or touch HTTP: the scheduler runs it under a deadline, classifies
whatever it raises, and emits the framework series.
"""

from __future__ import annotations

import errno
import importlib
import ssl
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate
from typing import Any, Generic, Literal, TypeVar

from .budget import ReadBudget
from .catalogue.base import Family
from .model import TargetBase

Reason = Literal["timeout", "refused", "auth", "protocol", "config", "other"]
REASONS: tuple[Reason, ...] = ("timeout", "refused", "auth", "protocol", "config", "other")
DEFAULT_RESPONSE_BUDGET = 16 << 20


@dataclass(frozen=True, slots=True)
class Sample:
    """One series value: family, label values (in the family's label order), value."""

    family: Family
    labels: tuple[str, ...]
    value: float


@dataclass(frozen=True, slots=True)
class HistogramSample:
    """A histogram series: cumulative counts for each of the family's buckets."""

    family: Family
    labels: tuple[str, ...]
    cumulative_counts: tuple[int, ...]
    sum: float
    count: int


class Histogram:
    """Observations counted into fixed upper bounds (``le``), rendered as a HistogramSample."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        """Observations per bucket, not cumulative (above the last bound: in ``count`` only)."""
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Count one observation."""
        i = bisect_left(self.bounds, value)  # the first bound >= value
        if i < len(self.counts):
            self.counts[i] += 1
        self.sum += value
        self.count += 1

    def sample(self, family: Family, *labels: str) -> HistogramSample:
        """The cumulative series for ``family`` (whose buckets are ``bounds``)."""
        return HistogramSample(family, labels, tuple(accumulate(self.counts)), self.sum, self.count)


@dataclass(slots=True)
class ProbeResult:
    """What a probe returns: its samples, in any order."""

    samples: list[Sample | HistogramSample] = field(default_factory=list)

    def add(self, family: Family, value: float | bool | None, *labels: str) -> None:
        """Add a sample; ``None`` means "not known" and adds nothing."""
        if value is None:
            return
        if len(labels) != len(family.labels):
            raise ValueError(f"{family.name} takes labels {family.labels}, got {labels}")
        self.samples.append(Sample(family, labels, float(value)))

    def add_histogram(self, sample: HistogramSample) -> None:
        """Add a histogram series."""
        if len(sample.labels) != len(sample.family.labels):
            raise ValueError(f"{sample.family.name} takes labels {sample.family.labels}")
        self.samples.append(sample)


class ProbeError(Exception):
    """Raised by a probe for a failure it can name: ``reason`` is one of REASONS.

    The message goes to the log (with secrets masked), never into a label.
    ``partial`` holds samples that stay true although the run failed (a FIX
    probe's failure reason, the timings it did measure); the framework serves
    them in place of the withdrawn data series.
    """

    def __init__(self, reason: Reason, message: str, partial: ProbeResult | None = None) -> None:
        super().__init__(message)
        self.reason: Reason = reason
        self.partial = partial


class ProbeState:
    """Per-target memory owned by the scheduler: connection pools, sample tables.

    Created once per target (and per config generation) and closed on shutdown
    or when the target's configuration changes. ``budget`` is the target's
    ``ReadBudget``: ``run_probe`` resets it before every run, and every
    connection the probe opens must charge it (see ``exporter.budget``).
    """

    budget: ReadBudget = ReadBudget(DEFAULT_RESPONSE_BUDGET)
    """Replaced by ``run_probe`` with one sized for the target before the first run."""

    async def aclose(self) -> None:
        """Release connections and other resources."""


T = TypeVar("T", bound=TargetBase)
S = TypeVar("S", bound=ProbeState)


@dataclass(slots=True)
class ProbeContext(Generic[S]):
    """Handed to every probe run."""

    state: S
    deadline: float
    """``loop.time()`` at which the run is cancelled."""
    now: Callable[[], float]
    """Wall clock (Unix seconds); a parameter so tests can drive time."""


def _no_reason(exc: BaseException) -> Reason | None:
    return None


@dataclass(frozen=True, slots=True)
class KindRuntime(Generic[T, S]):
    """What running a kind needs: the probe, its state factory, its error mapping.

    Kept apart from ``ProbeKind`` so that a kind's client library is imported
    only when a target of that kind runs, not when a config is read.
    """

    probe: Callable[[T, ProbeContext[S]], Awaitable[ProbeResult]]
    new_state: Callable[[T], S]
    classify: Callable[[BaseException], Reason | None] = _no_reason
    """Maps client-library exceptions to a reason; ``None`` falls back to the defaults."""


def runtime_of(module: str) -> Callable[[], KindRuntime[Any, Any]]:
    """A ``ProbeKind.load``: imports ``module`` when first called and returns its
    ``RUNTIME``, so that a kind's client library is imported only once one of its
    targets runs, never when a config is read."""

    def load() -> KindRuntime[Any, Any]:
        runtime: KindRuntime[Any, Any] = importlib.import_module(module).RUNTIME
        return runtime

    return load


@dataclass(frozen=True)
class ProbeKind(Generic[T, S]):
    """Registers a probe kind with the framework: one per ``exporter/kinds/`` package."""

    name: str
    """Config section and ``kind`` label value."""
    target_model: type[T]
    families: tuple[Family, ...]
    """Every family the kind's probe may emit; the catalogue is assembled from these."""
    load: Callable[[], KindRuntime[T, S]]
    """Imports the kind's runtime (its client library) on first use."""
    address_field: str
    """The target field that ``/probe?target=`` fills in."""
    example_address: str
    """A valid value of ``address_field``, used to validate ``/probe`` modules."""
    response_budget: int = DEFAULT_RESPONSE_BUDGET
    """The default of the targets' ``response_budget`` (bytes per run)."""
    cross_check: Callable[[Mapping[str, Sequence[TargetBase]]], list[tuple[str, str]]] | None = None
    """Checks that need other sections (targets by section): (field path, problem) pairs."""

    @cached_property
    def family_names(self) -> frozenset[str]:
        """The names of ``families`` (computed once per kind)."""
        return frozenset(f.name for f in self.families)

    @property
    def probe(self) -> Callable[[T, ProbeContext[S]], Awaitable[ProbeResult]]:
        """The kind's probe function."""
        return self.load().probe

    @property
    def new_state(self) -> Callable[[T], S]:
        """Creates a target's ``ProbeState``."""
        return self.load().new_state

    @property
    def classify(self) -> Callable[[BaseException], Reason | None]:
        """The kind's exception-to-reason mapping."""
        return self.load().classify


def classify_error(
    exc: BaseException, kind_classify: Callable[[BaseException], Reason | None]
) -> Reason:
    """The reason for a failed run: the probe's own, the kind's, then generic rules."""
    if isinstance(exc, ProbeError):
        return exc.reason
    for cause in _chain(exc):
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
        if isinstance(cause, TimeoutError):
            return "timeout"
    reason = kind_classify(exc)
    if reason is not None:
        return reason
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ssl.SSLError | UnicodeDecodeError | ValueError):
        return "protocol"
    if isinstance(exc, OSError) and exc.errno in (
        errno.ECONNREFUSED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
    ):
        return "refused"
    if isinstance(exc, ConnectionError | OSError | EOFError):
        return "protocol" if isinstance(exc, ConnectionResetError | EOFError) else "other"
    return "other"


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes/contexts (client libraries wrap socket errors)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out
