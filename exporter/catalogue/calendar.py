"""Trading-calendar families: exporter-level series, one per calendar (``always``
included) and one per configured target. Rules join on them to gate the alerts
that expect data to flow (``calendar`` is a ``calendars:`` name)."""

from __future__ import annotations

from .base import family

CAL = "calendar"

OPEN = family(
    "calendar_open", "gauge", "1 while a session of the trading calendar is open, else 0.", CAL
)
SESSION_OPEN = family(
    "calendar_session_open_timestamp_seconds",
    "gauge",
    "Unix time the current session opened (while open), else the next session opens; "
    "0 for the always calendar.",
    CAL,
)
SESSION_CLOSE = family(
    "calendar_session_close_timestamp_seconds",
    "gauge",
    "Unix time the current session closes (while open), else the next session closes; "
    "absent when it never closes (the always calendar).",
    CAL,
)
WARMUP = family(
    "calendar_warmup_seconds",
    "gauge",
    "The calendar's configured warm-up: how long after an open data is not yet expected.",
    CAL,
)
TARGET_CALENDAR = family(
    "target_calendar_info",
    "gauge",
    "The trading calendar each configured target follows; always 1.",
    "kind",
    "target",
    CAL,
)

FAMILIES = (OPEN, SESSION_OPEN, SESSION_CLOSE, WARMUP, TARGET_CALENDAR)
