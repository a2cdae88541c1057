"""The passive FIX reader's target: one session of a QuickFIX engine, read from its files."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from ...model import Duration, TargetBase
from ..fix.common import BeginString, CompID, Schedule

RESPONSE_BUDGET = 64 << 20
"""The kind's default ``response_budget``: both logs at the default ``max_read_bytes``."""


class FixStoreTarget(TargetBase):
    """One session of a QuickFIX engine, read from its files."""

    store_path: Path
    """The engine's FileStorePath (holds ``<prefix>.seqnums`` and ``<prefix>.session``)."""
    log_path: Path | None = None
    """The engine's FileLogPath; defaults to ``store_path``."""
    begin_string: BeginString = "FIX.4.4"
    sender_comp_id: CompID
    """The engine's own CompID on this session."""
    target_comp_id: CompID
    session_qualifier: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    file_prefix: str | None = Field(default=None, pattern=r"^[^/\x00]{1,200}$")
    """Overrides the derived file prefix."""
    heartbeat_grace: Duration | None = None
    """Slack past HeartBtInt before a heartbeat is overdue; default 20% of it, at least 1 s."""
    backfill_bytes: int = Field(default=8 << 20, ge=0, le=1 << 40)
    """On the first read of a log, start this many bytes before its end."""
    max_read_bytes: int = Field(default=32 << 20, ge=4096, le=1 << 30)
    """At most this many bytes of each log per cycle; the rest waits for the next."""
    schedule: Schedule | None = None
    ack_timeout: Duration = Field(default=30.0, le=86_400)
    """An order entry not answered this long after it (log time) counts as unacknowledged."""
    max_pending_orders: int = Field(default=10_000, ge=1, le=1_000_000)
    """At most this many order entries wait for an answer; beyond, the oldest is dropped."""

    @model_validator(mode="after")
    def _distinct_comp_ids(self) -> FixStoreTarget:
        if self.sender_comp_id == self.target_comp_id:
            raise ValueError("sender_comp_id and target_comp_id must differ")
        return self

    @property
    def prefix(self) -> str:
        """The QuickFIX file prefix of this session."""
        if self.file_prefix:
            return self.file_prefix
        parts = [self.begin_string, self.sender_comp_id, self.target_comp_id]
        if self.session_qualifier:
            parts.append(self.session_qualifier)
        return "-".join(parts)
