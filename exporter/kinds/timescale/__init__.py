"""TimescaleDB/PostgreSQL: reach, recovery, replication, jobs and hypertable freshness.

Importing this package reads no client library: ``asyncpg`` is loaded with the
runtime (``probe``), when the first TimescaleDB/PostgreSQL target runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...probe import KindRuntime, ProbeKind
from . import metrics
from .config import TimescaleTarget

if TYPE_CHECKING:
    from .probe import TimescaleState

RESPONSE_BUDGET = 4 << 20
"""The kind's default ``response_budget``: a run at the default limits (500
hypertables, 500 jobs) with 1000 watched tables, names near 63 bytes, receives
about 256 KiB (tests/kinds/timescale/test_timescale.py), a sixteenth of it."""


def _load() -> KindRuntime[TimescaleTarget, TimescaleState]:
    from .probe import RUNTIME

    return RUNTIME


KIND: ProbeKind[TimescaleTarget, TimescaleState] = ProbeKind(
    name="timescale",
    target_model=TimescaleTarget,
    families=metrics.FAMILIES,
    load=_load,
    address_field="address",
    example_address="127.0.0.1:5432",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "TimescaleTarget"]
