"""Redis: a server, a Sentinel group or a Cluster: reach, role, replication, memory.

Importing this package reads no client library: ``redis`` is loaded with the
runtime (``probe``), when the first Redis target runs.
"""

from __future__ import annotations

from ...probe import ProbeKind, runtime_of
from . import metrics
from .config import DEFAULT_BUDGET, RedisTarget

KIND = ProbeKind(
    name="redis",
    target_model=RedisTarget,
    families=metrics.FAMILIES,
    load=runtime_of(f"{__name__}.probe"),
    address_field="address",
    example_address="127.0.0.1:6379",
    response_budget=DEFAULT_BUDGET,
)

__all__ = ["KIND", "RedisTarget"]
