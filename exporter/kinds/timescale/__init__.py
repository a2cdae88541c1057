"""TimescaleDB/PostgreSQL: reach, recovery, replication, jobs and hypertable freshness.

Importing this package reads no client library: ``asyncpg`` is loaded with the
runtime (``probe``), when the first TimescaleDB/PostgreSQL target runs.
"""

from __future__ import annotations

from ...probe import ProbeKind, runtime_of
from . import metrics
from .config import TimescaleTarget

RESPONSE_BUDGET = 4 << 20
"""The kind's default ``response_budget``: a run at the default limits (500
hypertables, 500 jobs) with 1000 watched tables, names near 63 bytes, receives
about 256 KiB (tests/kinds/timescale/test_timescale.py), a sixteenth of it."""


KIND = ProbeKind(
    name="timescale",
    target_model=TimescaleTarget,
    families=metrics.FAMILIES,
    load=runtime_of(f"{__name__}.probe"),
    address_field="address",
    example_address="127.0.0.1:5432",
    response_budget=RESPONSE_BUDGET,
)

__all__ = ["KIND", "RESPONSE_BUDGET", "TimescaleTarget"]
