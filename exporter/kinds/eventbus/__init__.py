"""Event bus: the runtime's health endpoint and an end-to-end canary.

Importing this package reads no client library: ``aiohttp``, ``aiokafka`` and
``redis`` are loaded with the runtime (``probe``), when the first event-bus
target runs.
"""

from __future__ import annotations

from ...probe import ProbeKind, runtime_of
from . import metrics
from .config import RESPONSE_BUDGET, EventBusTarget, log_deprecations

KIND = ProbeKind(
    name="eventbus",
    target_model=EventBusTarget,
    families=metrics.FAMILIES,
    load=runtime_of(f"{__name__}.probe"),
    address_field="url",
    example_address="http://127.0.0.1:8080/health",
    response_budget=RESPONSE_BUDGET,
    cross_check=log_deprecations,
)

__all__ = ["KIND", "EventBusTarget"]
