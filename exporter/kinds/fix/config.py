"""The active FIX probe's target, and the check that keeps it off production CompIDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import Field, model_validator

from ...model import HostPort, PasswordMixin, TargetBase, TLSConfig
from .common import BeginString, CompID, Schedule

RESPONSE_BUDGET = 1 << 20
"""The kind's default ``response_budget``: a session's exchange is about 1 KiB."""


class FixTarget(TargetBase, PasswordMixin):
    """A venue or gateway to log on to with a dedicated monitoring session."""

    address: HostPort
    sender_comp_id: CompID
    """The monitoring session's own CompID; never a production one."""
    target_comp_id: CompID
    begin_string: BeginString = "FIX.4.4"
    heartbeat_interval: int = Field(default=30, ge=1, le=3600)
    reset_seq_num: bool = True
    """Send ResetSeqNumFlag (141=Y) so every run starts at MsgSeqNum 1."""
    username: str | None = Field(default=None, min_length=1, max_length=128)
    """Username (553); the password (554) comes from ``password``/``password_file``."""
    tls: TLSConfig | None = None
    schedule: Schedule | None = None

    @model_validator(mode="after")
    def _distinct_comp_ids(self) -> FixTarget:
        if self.sender_comp_id == self.target_comp_id:
            raise ValueError("sender_comp_id and target_comp_id must differ")
        return self


def production_compids_reused(targets: Mapping[str, Sequence[TargetBase]]) -> list[tuple[str, str]]:
    """A monitoring session must never log on with a production session's CompIDs:
    the venue would see a second logon and may drop the production session, and
    the two would share sequence numbers."""
    production: dict[frozenset[str], tuple[int, str]] = {}
    for i, store in enumerate(targets.get("fix_store", ())):
        pair = frozenset(
            (getattr(store, "sender_comp_id", ""), getattr(store, "target_comp_id", ""))
        )
        production.setdefault(pair, (i, store.name))
    problems = []
    for i, t in enumerate(targets.get("fix", ())):
        assert isinstance(t, FixTarget)
        hit = production.get(frozenset((t.sender_comp_id, t.target_comp_id)))
        if hit is not None:
            problems.append(
                (
                    f"fix[{i}].sender_comp_id",
                    f"reuses the CompIDs of production session fix_store[{hit[0]}] ({hit[1]}); "
                    "a monitoring session needs a CompID of its own",
                )
            )
    return problems
