"""Drills: the records that drills leave behind, read like restore-drill records.

Importing this package reads only the configuration model and the families: the
runtime (``probe``) is loaded when the first drills target runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...probe import KindRuntime, ProbeKind
from . import metrics
from .config import RESPONSE_BUDGET, DrillsTarget

if TYPE_CHECKING:
    from .probe import DrillsState


def _load() -> KindRuntime[DrillsTarget, DrillsState]:
    from .probe import RUNTIME

    return RUNTIME


KIND: ProbeKind[DrillsTarget, DrillsState] = ProbeKind(
    name="drills",
    target_model=DrillsTarget,
    families=metrics.FAMILIES,
    load=_load,
    address_field="name",
    example_address="paging-drill",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "DrillsTarget"]
