"""Series the bundle's rules read that the trading runtime, not this exporter,
must export: a contract documented in docs/contract.md."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContractMetric:
    """A series the runtime exports for the bundle's rules."""

    name: str
    type: str
    labels: tuple[str, ...]
    help: str


CONTRACT: tuple[ContractMetric, ...] = (
    ContractMetric(
        "tradeops_runtime_position_drift_ratio",
        "gauge",
        ("book", "strategy"),
        "Absolute difference between the position held and the target position, "
        "as a fraction of the target's gross notional (0.005 is 0.5 %).",
    ),
)

BY_NAME = {m.name: m for m in CONTRACT}

PROMETHEUS_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})
"""Series Prometheus itself makes that the rules may read."""
