"""Backups: last success, size, duration and retention count, from records or files.

Importing this package reads only the configuration model and the families: the
runtime (``probe``) is loaded when the first backups target runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...probe import KindRuntime, ProbeKind
from . import metrics
from .config import RESPONSE_BUDGET, BackupTarget

if TYPE_CHECKING:
    from .probe import BackupState


def _load() -> KindRuntime[BackupTarget, BackupState]:
    from .probe import RUNTIME

    return RUNTIME


KIND: ProbeKind[BackupTarget, BackupState] = ProbeKind(
    name="backups",
    target_model=BackupTarget,
    families=metrics.FAMILIES,
    load=_load,
    address_field="name",
    example_address="backup-set",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "BackupTarget"]
