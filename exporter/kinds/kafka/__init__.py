"""Kafka: consumer-group offset lag, time lag, status and time to drain, per cluster.

Importing this package reads no client library: ``aiokafka`` is loaded with the
runtime (``probe``), when the first Kafka target runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...probe import KindRuntime, ProbeKind
from . import metrics
from .config import KafkaTarget

if TYPE_CHECKING:
    from .probe import KafkaState

RESPONSE_BUDGET = 64 << 20
"""The kind's default ``response_budget``: bytes all brokers may send in one run
(see docs/kafka.md for how it was sized and how it scales)."""


def _load() -> KindRuntime[KafkaTarget, KafkaState]:
    from .probe import RUNTIME

    return RUNTIME


KIND: ProbeKind[KafkaTarget, KafkaState] = ProbeKind(
    name="kafka",
    target_model=KafkaTarget,
    families=metrics.FAMILIES,
    load=_load,
    address_field="bootstrap_servers",
    example_address="127.0.0.1:9092",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "KafkaTarget"]
