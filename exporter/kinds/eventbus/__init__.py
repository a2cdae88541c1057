"""Event bus: the runtime's health endpoint and an end-to-end canary.

Importing this package reads no client library: ``aiohttp``, ``aiokafka`` and
``redis`` are loaded with the runtime (``probe``), when the first event-bus
target runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...probe import KindRuntime, ProbeKind
from . import metrics
from .config import RESPONSE_BUDGET, EventBusTarget, log_deprecations

if TYPE_CHECKING:
    from .probe import EventBusState


def _load() -> KindRuntime[EventBusTarget, EventBusState]:
    from .probe import RUNTIME

    return RUNTIME


KIND: ProbeKind[EventBusTarget, EventBusState] = ProbeKind(
    name="eventbus",
    target_model=EventBusTarget,
    families=metrics.FAMILIES,
    load=_load,
    address_field="url",
    example_address="http://127.0.0.1:8080/health",
    response_budget=RESPONSE_BUDGET,
    cross_check=log_deprecations,
)

__all__ = ["KIND", "EventBusTarget"]
