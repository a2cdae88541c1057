"""Drills target configuration: where one kind of drill leaves its records."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ...model import Duration, TargetBase

MiB = 1 << 20
RESPONSE_BUDGET = 4 * MiB
"""The kind's default ``response_budget``."""


class DrillsTarget(TargetBase):
    """Drill records of one kind of drill."""

    path: Path
    """A directory of records (``glob`` inside it) or one record file."""
    glob: str = "*.json"
    max_interval: Duration = 86400.0
    """The longest acceptable time between two successful drills (default 24h)."""
    max_records: int = Field(default=1000, ge=1)
    """At most this many files are read, the newest by modification time."""
    max_record_bytes: int = Field(default=MiB, ge=64)
