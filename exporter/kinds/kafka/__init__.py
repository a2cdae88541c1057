"""Kafka: consumer-group offset lag, time lag, status and time to drain, per cluster.

Importing this package reads no client library: ``aiokafka`` is loaded with the
runtime (``probe``), when the first Kafka target runs.
"""

from __future__ import annotations

from ...probe import ProbeKind, runtime_of
from . import metrics
from .config import KafkaTarget

RESPONSE_BUDGET = 64 << 20
"""The kind's default ``response_budget``: bytes all brokers may send in one run
(see docs/kafka.md for how it was sized and how it scales)."""


KIND = ProbeKind(
    name="kafka",
    target_model=KafkaTarget,
    families=metrics.FAMILIES,
    load=runtime_of(f"{__name__}.probe"),
    address_field="bootstrap_servers",
    example_address="127.0.0.1:9092",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "KafkaTarget"]
