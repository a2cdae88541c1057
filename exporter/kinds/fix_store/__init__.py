"""FIX, passive: a QuickFIX engine's FileStore and FileLog, read for one session.

Importing this package reads no log or store: the reader (``probe``) is loaded
with the runtime, when the first ``fix_store`` target runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...probe import KindRuntime, ProbeKind
from . import metrics
from .config import RESPONSE_BUDGET, FixStoreTarget

if TYPE_CHECKING:
    from .probe import FixStoreState


def _load() -> KindRuntime[FixStoreTarget, FixStoreState]:
    from .probe import RUNTIME

    return RUNTIME


KIND: ProbeKind[FixStoreTarget, FixStoreState] = ProbeKind(
    name="fix_store",
    target_model=FixStoreTarget,
    families=metrics.FAMILIES,
    load=_load,
    address_field="store_path",
    example_address="/var/lib/quickfix/store",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "FixStoreTarget"]
