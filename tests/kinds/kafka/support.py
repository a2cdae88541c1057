"""Helpers shared by the Kafka kind's unit tests."""

from __future__ import annotations

from exporter.probe import ProbeResult, Sample


def values(r: ProbeResult, family: object) -> dict[tuple[str, ...], float]:
    """The result's series of ``family``: label values -> value."""
    return {s.labels: s.value for s in r.samples if isinstance(s, Sample) and s.family is family}
