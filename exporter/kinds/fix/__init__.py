"""FIX, active: a monitoring session that logs on to a venue or gateway.

Importing this package reads no client library: ``simplefix`` is loaded with the
runtime (``probe``), when the first FIX target runs.
"""

from __future__ import annotations

from ...probe import ProbeKind, runtime_of
from . import metrics
from .config import RESPONSE_BUDGET, FixTarget, production_compids_reused

KIND = ProbeKind(
    name="fix",
    target_model=FixTarget,
    families=metrics.FAMILIES,
    load=runtime_of(f"{__name__}.probe"),
    address_field="address",
    cross_check=production_compids_reused,
    example_address="127.0.0.1:9876",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "FixTarget"]
