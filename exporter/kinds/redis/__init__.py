"""Redis: a server, a Sentinel group or a Cluster: reach, role, replication, memory.

Importing this package reads no client library: ``redis`` is loaded with the
runtime (``probe``), when the first Redis target runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...probe import KindRuntime, ProbeKind
from . import metrics
from .config import DEFAULT_BUDGET, RedisTarget

if TYPE_CHECKING:
    from .probe import RedisState


def _load() -> KindRuntime[RedisTarget, RedisState]:
    from .probe import RUNTIME

    return RUNTIME


KIND: ProbeKind[RedisTarget, RedisState] = ProbeKind(
    name="redis",
    target_model=RedisTarget,
    families=metrics.FAMILIES,
    load=_load,
    address_field="address",
    example_address="127.0.0.1:6379",
    response_budget=DEFAULT_BUDGET,
)

__all__ = ["KIND", "RedisTarget"]
