"""Trading calendars: when a target's data is expected to flow.

A calendar is a set of sessions, each an ``[open, close)`` interval of Unix
time. A weekly calendar is built from local wall-clock sessions in a time
zone, minus holidays, with early closes; an exchange calendar comes from the
optional ``exchange-calendars`` package. ``always`` is built in: open at all
times, with no warm-up.

Sessions that touch or overlap are one session (a market open around the
clock from Sunday evening to Friday evening is one session, not five), so a
warm-up counts from the real open. ``Calendar.state(now)`` is pure: it answers
for any ``now`` from a table of sessions built around it (and rebuilt as time
moves on).
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
import threading
import warnings
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field, field_validator, model_validator

from .model import (
    ALWAYS,
    WEEKDAYS,
    DurationOrZero,
    Name,
    StrictModel,
    TimeZone,
    Weekday,
)

DEFAULT_WARMUP_SECONDS = 300.0
LOOKBACK_DAYS = 15
"""Days of sessions kept before ``now`` in a weekly calendar's table."""
LOOKAHEAD_DAYS = 400
"""Days of sessions kept after ``now`` in a weekly calendar's table."""
WEEKLY_REBUILD_SECONDS = 7 * 86400.0
EXCHANGE_SPAN_DAYS = 730
"""An exchange calendar is read for this many days either side of ``now``..."""
EXCHANGE_REBUILD_SECONDS = 365 * 86400.0
"""... and read again once ``now`` has moved this far from where it was read."""
EXCHANGE_PACKAGE_MISSING = (
    "needs the exchange-calendars package (pip install 'tradeops-exporter[calendars]')"
)

_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def _local_time(value: Any) -> dt.time:
    """``"09:30"`` or ``"09:30:15"``. Unquoted YAML ``16:00`` is a number
    (base 60) and is refused rather than misread."""
    if isinstance(value, dt.time):
        if value.tzinfo is not None:
            raise ValueError("a local time: give the zone in timezone")
        return value
    m = _TIME_RE.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError('expected a local time in quotes, such as "09:30"')
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError('expected a local time in quotes, such as "09:30"')
    return dt.time(hour, minute, second)


LocalTime = Annotated[dt.time, BeforeValidator(_local_time)]
"""A local wall-clock time of day, written ``"HH:MM"``."""


# --- configuration -------------------------------------------------------------------


class WeeklySession(StrictModel):
    """A session on some weekdays. When ``close`` is not after ``open`` the session
    runs past midnight and belongs to the day it opens (``open == close``: 24 hours)."""

    days: list[Weekday] = Field(min_length=1)
    open: LocalTime
    close: LocalTime


def exchange_calendars_module() -> Any:
    """The ``exchange_calendars`` package, imported on first use; ValueError when absent."""
    try:
        return importlib.import_module("exchange_calendars")
    except ImportError:
        raise ValueError(EXCHANGE_PACKAGE_MISSING) from None


def check_exchange(code: str) -> str:
    """An exchange code that ``exchange-calendars`` knows (``XNYS``, ``XLON``, ...)."""
    names = exchange_calendars_module().get_calendar_names(include_aliases=True)
    if code not in names:
        raise ValueError(
            f"unknown exchange {code!r}; expected an exchange-calendars code such as XNYS"
        )
    return code


class CalendarConfig(StrictModel):
    """One ``calendars:`` entry: weekly ``sessions`` in a ``timezone``, or an ``exchange``."""

    name: Name
    timezone: TimeZone | None = None
    sessions: list[WeeklySession] | None = Field(default=None, min_length=1)
    exchange: str | None = None
    holidays: list[dt.date] = Field(default_factory=list)
    early_closes: dict[dt.date, LocalTime] = Field(default_factory=dict)
    """Date (the day a session opens) -> the local time it closes that day."""
    warmup: DurationOrZero = DEFAULT_WARMUP_SECONDS
    """How long after an open data is not yet expected to flow."""

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == ALWAYS:
            raise ValueError(f"{ALWAYS!r} is reserved: it is the built-in calendar, always open")
        return value

    @field_validator("exchange")
    @classmethod
    def _known_exchange(cls, value: str | None) -> str | None:
        return None if value is None else check_exchange(value)

    @model_validator(mode="after")
    def _one_source(self) -> CalendarConfig:
        if (self.sessions is None) == (self.exchange is None):
            raise ValueError("give exactly one of sessions or exchange")
        if self.exchange is not None:
            given = [
                name
                for name in ("timezone", "holidays", "early_closes")
                if name in self.model_fields_set
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)}: not with exchange (the exchange's calendar has them)"
                )
        elif self.timezone is None:
            raise ValueError("sessions need a timezone")
        return self


# --- computation ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalendarState:
    """A calendar at one instant: whether a session is open, and the current
    session's (while open) or else the next session's open and close."""

    open: bool
    session_open: float | None
    """Unix time; 0 for a session that began before anything this calendar looks back on."""
    session_close: float | None
    """Unix time; None when there is no such session in view or it never closes."""


ALWAYS_STATE = CalendarState(True, 0.0, None)


def merge(sessions: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted sessions with touching or overlapping ones joined; empty ones dropped."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(sessions):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


@dataclass(frozen=True, slots=True)
class SessionTable:
    """Merged sessions around ``built_for``; looked up by bisection."""

    opens: tuple[float, ...]
    closes: tuple[float, ...]
    built_for: float
    start_unknown: bool = False
    """The first session may have begun before the sessions the table was built from."""
    end_unknown: bool = False
    """The last session may go on after them."""

    @classmethod
    def of(cls, sessions: Iterable[tuple[float, float]], built_for: float) -> SessionTable:
        """A table of ``sessions`` (merged here)."""
        merged = merge(sessions)
        return cls(tuple(s for s, _ in merged), tuple(e for _, e in merged), built_for)

    def state(self, now: float) -> CalendarState:
        """Open or closed at ``now``, with the current or next session's bounds."""
        i = bisect_right(self.opens, now) - 1
        if i >= 0 and now < self.closes[i]:
            return CalendarState(True, self._open(i), self._close(i))
        if i + 1 < len(self.opens):  # a session after ``now``: its open is known
            return CalendarState(False, self.opens[i + 1], self._close(i + 1))
        return CalendarState(False, None, None)

    def _open(self, i: int) -> float:
        return 0.0 if i == 0 and self.start_unknown else self.opens[i]

    def _close(self, i: int) -> float | None:
        return None if i == len(self.opens) - 1 and self.end_unknown else self.closes[i]


def _instant(zone: ZoneInfo, day: dt.date, clock: dt.time) -> float:
    """Unix time of a local wall-clock time. A time skipped by a DST change counts
    with the offset before it (02:30 on a spring-forward day is 03:30 new time); a
    repeated one is its first occurrence."""
    return dt.datetime.combine(day, clock, tzinfo=zone).timestamp()


def day_sessions(cal: CalendarConfig, zone: ZoneInfo, day: dt.date) -> list[tuple[float, float]]:
    """The sessions that open on local date ``day`` (none on a holiday). An early
    close cuts the day's sessions at that time (the day after when it is not after
    the day's first open, as for an overnight session) and drops those opening later."""
    assert cal.sessions is not None
    if day in cal.holidays:
        return []
    weekday = WEEKDAYS[day.weekday()]
    today = [s for s in cal.sessions if weekday in s.days]
    if not today:
        return []
    out = []
    early = cal.early_closes.get(day)
    first_open = min(s.open for s in today)
    cut = None
    if early is not None:
        cut = _instant(zone, day if early > first_open else day + dt.timedelta(days=1), early)
    for s in today:
        start = _instant(zone, day, s.open)
        end = _instant(zone, day if s.close > s.open else day + dt.timedelta(days=1), s.close)
        if cut is not None:
            if start >= cut:
                continue
            end = min(end, cut)
        out.append((start, end))
    return out


def weekly_table(cal: CalendarConfig, now: float) -> SessionTable:
    """The sessions of local dates from LOOKBACK_DAYS before ``now`` to
    LOOKAHEAD_DAYS after it."""
    assert cal.timezone is not None
    zone = ZoneInfo(cal.timezone)
    today = dt.datetime.fromtimestamp(now, zone).date()
    first = today - dt.timedelta(days=LOOKBACK_DAYS)
    last = today + dt.timedelta(days=LOOKAHEAD_DAYS)
    sessions = [
        s
        for n in range((last - first).days + 1)
        for s in day_sessions(cal, zone, first + dt.timedelta(days=n))
    ]
    table = SessionTable.of(sessions, now)
    if not table.opens:
        return table
    after_first = _instant(zone, first + dt.timedelta(days=1), dt.time(0))
    after_last = _instant(zone, last + dt.timedelta(days=1), dt.time(0))
    return SessionTable(
        table.opens,
        table.closes,
        now,
        start_unknown=table.opens[0] < after_first,
        end_unknown=table.closes[-1] >= after_last,
    )


_EXCHANGE_TABLES: dict[str, SessionTable] = {}
_EXCHANGE_LOCK = threading.Lock()


def _exchange_sessions(columns: Sequence[Sequence[Any]]) -> list[tuple[float, float]]:
    """(open, close) pairs from the schedule's open, break start, break end and close
    columns; a session with a break is two sessions."""
    pandas = importlib.import_module("pandas")
    out: list[tuple[float, float]] = []
    for start, pause, resume, end in zip(*columns, strict=True):
        if pandas.isna(pause) or pandas.isna(resume):
            out.append((start.timestamp(), end.timestamp()))
        else:
            out.append((start.timestamp(), pause.timestamp()))
            out.append((resume.timestamp(), end.timestamp()))
    return out


def exchange_table(code: str, now: float) -> SessionTable:
    """The exchange's sessions EXCHANGE_SPAN_DAYS either side of ``now``, cached per
    exchange (shared by every calendar and config generation) and read again once
    ``now`` has moved EXCHANGE_REBUILD_SECONDS away."""
    with _EXCHANGE_LOCK:
        cached = _EXCHANGE_TABLES.get(code)
        if cached is not None and abs(now - cached.built_for) <= EXCHANGE_REBUILD_SECONDS:
            return cached
        xcals = exchange_calendars_module()
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        span = dt.timedelta(days=EXCHANGE_SPAN_DAYS)
        with warnings.catch_warnings():  # the package's own pandas deprecations
            warnings.simplefilter("ignore", DeprecationWarning)
            cal = xcals.get_calendar(code, start=str(today - span), end=str(today + span))
            schedule = cal.schedule
            columns = [list(schedule[c]) for c in ("open", "break_start", "break_end", "close")]
        table = SessionTable.of(_exchange_sessions(columns), now)
        _EXCHANGE_TABLES[code] = table
        return table


class Calendar:
    """A named calendar with its warm-up. ``state(now)`` reads a table of sessions
    built around ``now`` by ``build`` (None: the ``always`` calendar)."""

    def __init__(
        self,
        name: str,
        warmup: float,
        build: Callable[[float], SessionTable] | None = None,
        rebuild_after: float = WEEKLY_REBUILD_SECONDS,
    ) -> None:
        self.name = name
        self.warmup = warmup
        self._build = build
        self._rebuild_after = rebuild_after
        self._table: SessionTable | None = None

    def prepare(self, now: float) -> None:
        """Build the session table for ``now`` (to do it off the event loop)."""
        self.state(now)

    def state(self, now: float) -> CalendarState:
        """Whether a session is open at ``now``, and its (or the next one's) bounds."""
        if self._build is None:
            return ALWAYS_STATE
        table = self._table
        if table is None or abs(now - table.built_for) > self._rebuild_after:
            table = self._table = self._build(now)
        return table.state(now)


ALWAYS_CALENDAR = Calendar(ALWAYS, 0.0)


def calendar_from(config: CalendarConfig) -> Calendar:
    """The runtime calendar of a ``calendars:`` entry."""
    if config.exchange is not None:
        code = config.exchange
        return Calendar(
            config.name,
            config.warmup,
            lambda now: exchange_table(code, now),
            EXCHANGE_REBUILD_SECONDS,
        )
    return Calendar(config.name, config.warmup, lambda now: weekly_table(config, now))


def build_calendars(configs: Iterable[CalendarConfig]) -> dict[str, Calendar]:
    """``always`` and every configured calendar, by name (``always`` first)."""
    out = {ALWAYS: ALWAYS_CALENDAR}
    for config in configs:
        out[config.name] = calendar_from(config)
    return out
