"""Pieces shared by the two FIX kinds: CompID fields, the trading schedule, msg types."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from ...model import WEEKDAYS, StrictModel, TimeZone, Weekday

CompID = Annotated[str, Field(pattern=r"^[!-<>-~]{1,64}$")]
"""A SenderCompID/TargetCompID: printable ASCII without spaces, ``=`` or SOH."""

BeginString = Annotated[str, Field(pattern=r"^FIXT?\.\d\.\d$")]
"""``FIX.4.2``, ``FIX.4.4``, ``FIXT.1.1`` ..."""


class Schedule(StrictModel):
    """A daily trading window in a time zone, on some weekdays.

    ``start`` and ``end`` are local wall-clock times. When ``end`` is not after
    ``start`` the window runs past midnight and belongs to the weekday it
    starts on; ``start == end`` means the whole day.
    """

    timezone: TimeZone = "UTC"
    start: dt.time = dt.time(0, 0)
    end: dt.time = dt.time(0, 0)
    weekdays: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)

    @model_validator(mode="after")
    def _naive_times(self) -> Schedule:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("start and end are local times: give the zone in timezone")
        return self

    def contains(self, unix_time: float) -> bool:
        """True if ``unix_time`` falls inside the window."""
        local = dt.datetime.fromtimestamp(unix_time, ZoneInfo(self.timezone))
        clock = local.time().replace(tzinfo=None)
        today = WEEKDAYS[local.weekday()]
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        if self.start == self.end:
            return today in self.weekdays
        if self.start < self.end:
            return today in self.weekdays and self.start <= clock < self.end
        return (today in self.weekdays and clock >= self.start) or (
            yesterday in self.weekdays and clock < self.end
        )


def in_schedule(schedule: Schedule | None, unix_time: float) -> bool:
    """True without a schedule, else whether ``unix_time`` is inside it."""
    return schedule is None or schedule.contains(unix_time)
