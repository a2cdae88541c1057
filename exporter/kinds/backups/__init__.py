"""Backups: last success, size, duration and retention count, from records or files.

Importing this package reads only the configuration model and the families: the
runtime (``probe``) is loaded when the first backups target runs.
"""

from __future__ import annotations

from ...probe import ProbeKind, runtime_of
from . import metrics
from .config import RESPONSE_BUDGET, BackupTarget

KIND = ProbeKind(
    name="backups",
    target_model=BackupTarget,
    families=metrics.FAMILIES,
    load=runtime_of(f"{__name__}.probe"),
    address_field="name",
    example_address="backup-set",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "BackupTarget"]
