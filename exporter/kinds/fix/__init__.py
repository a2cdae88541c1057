"""FIX, active: a monitoring session that logs on to a venue or gateway.

Importing this package reads no client library: ``simplefix`` is loaded with the
runtime (``probe``), when the first FIX target runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...probe import KindRuntime, ProbeKind
from . import metrics
from .config import RESPONSE_BUDGET, FixTarget, production_compids_reused

if TYPE_CHECKING:
    from .probe import FixState


def _load() -> KindRuntime[FixTarget, FixState]:
    from .probe import RUNTIME

    return RUNTIME


KIND: ProbeKind[FixTarget, FixState] = ProbeKind(
    name="fix",
    target_model=FixTarget,
    families=metrics.FAMILIES,
    load=_load,
    address_field="address",
    cross_check=production_compids_reused,
    example_address="127.0.0.1:9876",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "FixTarget"]
