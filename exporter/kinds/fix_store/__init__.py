"""FIX, passive: a QuickFIX engine's FileStore and FileLog, read for one session.

Importing this package reads no log or store: the reader (``probe``) is loaded
with the runtime, when the first ``fix_store`` target runs.
"""

from __future__ import annotations

from ...probe import ProbeKind, runtime_of
from . import metrics
from .config import RESPONSE_BUDGET, FixStoreTarget

KIND = ProbeKind(
    name="fix_store",
    target_model=FixStoreTarget,
    families=metrics.FAMILIES,
    load=runtime_of(f"{__name__}.probe"),
    address_field="store_path",
    example_address="/var/lib/quickfix/store",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "FixStoreTarget"]
