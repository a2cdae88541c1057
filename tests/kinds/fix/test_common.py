"""Trading schedules (``common.Schedule``), shared by both FIX kinds: local times in
their zone, and windows that run past midnight."""

from __future__ import annotations

import datetime as dt

import pytest

from exporter.kinds.fix.common import Schedule


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        ("2026-11-23T08:59:59", False),  # a Monday, before the open
        ("2026-11-23T09:00:00", True),
        ("2026-11-23T17:29:59", True),
        ("2026-11-23T17:30:00", False),
        ("2026-11-28T10:00:00", False),  # Saturday
    ],
)
def test_schedule_in_its_time_zone(when: str, inside: bool) -> None:
    sched = Schedule.model_validate(
        {
            "timezone": "America/New_York",
            "start": "09:00",
            "end": "17:30",
            "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        }
    )
    ts = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC).timestamp() + 5 * 3600  # EST
    assert sched.contains(ts) is inside


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        ("2026-11-22T22:00:00", True),  # Sunday 17:00 in New York: the FX week opens
        ("2026-11-22T21:59:00", False),
        ("2026-11-28T02:00:00", True),  # Friday 21:00 local, opened Friday
        ("2026-11-28T22:30:00", False),  # Saturday 17:30 local
    ],
)
def test_schedule_across_midnight(when: str, inside: bool) -> None:
    sched = Schedule.model_validate(
        {
            "timezone": "America/New_York",
            "start": "17:00",
            "end": "16:59",
            "weekdays": ["sun", "mon", "tue", "wed", "thu", "fri"],
        }
    )
    ts = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC).timestamp()
    assert sched.contains(ts) is inside
