"""Drills: the records that drills leave behind, read like restore-drill records.

Importing this package reads only the configuration model and the families: the
runtime (``probe``) is loaded when the first drills target runs.
"""

from __future__ import annotations

from ...probe import ProbeKind, runtime_of
from . import metrics
from .config import RESPONSE_BUDGET, DrillsTarget

KIND = ProbeKind(
    name="drills",
    target_model=DrillsTarget,
    families=metrics.FAMILIES,
    load=runtime_of(f"{__name__}.probe"),
    address_field="name",
    example_address="paging-drill",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "DrillsTarget"]
