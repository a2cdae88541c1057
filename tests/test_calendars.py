"""Trading calendars, computed: weekly sessions, DST, overnight sessions, holidays,
early closes, the built-in ``always`` calendar and exchange calendars."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exporter import config as cfg
from exporter.calendars import (
    ALWAYS_CALENDAR,
    CalendarConfig,
    CalendarState,
    SessionTable,
    build_calendars,
    calendar_from,
    exchange_table,
    merge,
)
from exporter.config import ConfigError

ROOT = Path(__file__).parent.parent
NY = "America/New_York"
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> float:
    """Unix time of a UTC wall-clock time."""
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.UTC).timestamp()


def weekly(sessions: list[dict[str, Any]], timezone: str = NY, **extra: Any) -> CalendarConfig:
    return CalendarConfig.model_validate(
        {"name": "cal", "timezone": timezone, "sessions": sessions, **extra}
    )


def state(config: CalendarConfig, now: float) -> CalendarState:
    return calendar_from(config).state(now)


def opened(start: float, end: float | None) -> CalendarState:
    return CalendarState(True, start, end)


def closed(next_open: float | None, next_close: float | None) -> CalendarState:
    return CalendarState(False, next_open, next_close)


XNYS_LIKE = weekly(
    [{"days": WEEKDAYS, "open": "09:30", "close": "16:00"}],
    holidays=[dt.date(2026, 12, 25), dt.date(2027, 1, 1)],
    early_closes={dt.date(2026, 11, 27): "13:00"},
)


# --- weekly sessions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Wednesday 2026-06-10, New York on EDT (UTC-4)
        (utc(2026, 6, 10, 12), closed(utc(2026, 6, 10, 13, 30), utc(2026, 6, 10, 20))),
        (utc(2026, 6, 10, 13, 30), opened(utc(2026, 6, 10, 13, 30), utc(2026, 6, 10, 20))),
        (utc(2026, 6, 10, 16), opened(utc(2026, 6, 10, 13, 30), utc(2026, 6, 10, 20))),
        (utc(2026, 6, 10, 19, 59, 59), opened(utc(2026, 6, 10, 13, 30), utc(2026, 6, 10, 20))),
        # the close itself is outside the session: the next one is Thursday's
        (utc(2026, 6, 10, 20), closed(utc(2026, 6, 11, 13, 30), utc(2026, 6, 11, 20))),
        # Friday evening and the weekend: Monday's session is next
        (utc(2026, 6, 12, 21), closed(utc(2026, 6, 15, 13, 30), utc(2026, 6, 15, 20))),
        (utc(2026, 6, 14, 12), closed(utc(2026, 6, 15, 13, 30), utc(2026, 6, 15, 20))),
    ],
)
def test_weekday_session(now: float, expected: CalendarState) -> None:
    assert state(XNYS_LIKE, now) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Friday 2026-03-06 on EST (UTC-5); DST starts Sunday 2026-03-08
        (utc(2026, 3, 6, 15), opened(utc(2026, 3, 6, 14, 30), utc(2026, 3, 6, 21))),
        (utc(2026, 3, 7, 12), closed(utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 20))),
        (utc(2026, 3, 9, 14), opened(utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 20))),
        # Friday 2026-10-30 on EDT; DST ends Sunday 2026-11-01
        (utc(2026, 10, 30, 14), opened(utc(2026, 10, 30, 13, 30), utc(2026, 10, 30, 20))),
        (utc(2026, 10, 31, 12), closed(utc(2026, 11, 2, 14, 30), utc(2026, 11, 2, 21))),
        # 14:00 UTC on Monday 2026-11-02 is 09:00 EST: not yet open
        (utc(2026, 11, 2, 14), closed(utc(2026, 11, 2, 14, 30), utc(2026, 11, 2, 21))),
    ],
)
def test_new_york_dst_transitions_keep_local_times(now: float, expected: CalendarState) -> None:
    assert state(XNYS_LIKE, now) == expected


LONDON = weekly([{"days": WEEKDAYS, "open": "08:00", "close": "16:30"}], "Europe/London")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # GMT until Sunday 2026-03-29, then BST (UTC+1) until Sunday 2026-10-25
        (utc(2026, 3, 27, 9), opened(utc(2026, 3, 27, 8), utc(2026, 3, 27, 16, 30))),
        (utc(2026, 3, 28, 9), closed(utc(2026, 3, 30, 7), utc(2026, 3, 30, 15, 30))),
        (utc(2026, 3, 30, 7, 30), opened(utc(2026, 3, 30, 7), utc(2026, 3, 30, 15, 30))),
        (utc(2026, 10, 23, 15, 45), closed(utc(2026, 10, 26, 8), utc(2026, 10, 26, 16, 30))),
        (utc(2026, 10, 26, 16), opened(utc(2026, 10, 26, 8), utc(2026, 10, 26, 16, 30))),
        # between the US and UK changes New York is on summer time and London is not:
        # London keeps its own local times
        (utc(2026, 3, 10, 8, 30), opened(utc(2026, 3, 10, 8), utc(2026, 3, 10, 16, 30))),
    ],
)
def test_london_dst_transitions(now: float, expected: CalendarState) -> None:
    assert state(LONDON, now) == expected


def test_a_time_skipped_by_dst_counts_with_the_old_offset_and_a_repeated_one_first() -> None:
    # 2026-03-08 02:30 does not exist in New York: it is 07:30 UTC (03:30 EDT)
    spring = weekly([{"days": ["sun"], "open": "02:30", "close": "04:00"}])
    assert state(spring, utc(2026, 3, 8, 7, 45)) == opened(
        utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 8)
    )
    # 2026-11-01 01:30 happens twice: the first (EDT) is 05:30 UTC
    autumn = weekly([{"days": ["sun"], "open": "01:30", "close": "03:00"}])
    assert state(autumn, utc(2026, 11, 1, 5)) == closed(
        utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8)
    )


# --- overnight and back-to-back sessions ----------------------------------------------

OVERNIGHT = weekly(
    [{"days": ["sun", "mon", "tue", "wed", "thu"], "open": "18:00", "close": "17:00"}],
    holidays=[dt.date(2026, 6, 16)],
)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Sunday 2026-06-14 18:00 EDT = 22:00 UTC, to Monday 17:00 EDT = 21:00 UTC
        (utc(2026, 6, 14, 21), closed(utc(2026, 6, 14, 22), utc(2026, 6, 15, 21))),
        (utc(2026, 6, 15, 3), opened(utc(2026, 6, 14, 22), utc(2026, 6, 15, 21))),
        (utc(2026, 6, 15, 21, 30), closed(utc(2026, 6, 15, 22), utc(2026, 6, 16, 21))),
        # Tuesday 06-16 is a holiday: Monday's session still runs into it (a session
        # belongs to the day it opens), Tuesday's does not open
        (utc(2026, 6, 16, 12), opened(utc(2026, 6, 15, 22), utc(2026, 6, 16, 21))),
        (utc(2026, 6, 16, 21), closed(utc(2026, 6, 17, 22), utc(2026, 6, 18, 21))),
        # Thursday's session ends Friday; Sunday's is next
        (utc(2026, 6, 19, 20), opened(utc(2026, 6, 18, 22), utc(2026, 6, 19, 21))),
        (utc(2026, 6, 20, 12), closed(utc(2026, 6, 21, 22), utc(2026, 6, 22, 21))),
    ],
)
def test_overnight_session_belongs_to_the_day_it_opens(now: float, expected: CalendarState) -> None:
    assert state(OVERNIGHT, now) == expected


def test_back_to_back_sessions_are_one_session() -> None:
    # 24 hours from Sunday 17:00 every weekday evening: open Sunday 17:00 to Friday 17:00
    fx = weekly([{"days": ["sun", "mon", "tue", "wed", "thu"], "open": "17:00", "close": "17:00"}])
    week = opened(utc(2026, 6, 14, 21), utc(2026, 6, 19, 21))
    assert state(fx, utc(2026, 6, 15, 21)) == week  # Monday 17:00: no reopening
    assert state(fx, utc(2026, 6, 17, 12)) == week
    assert state(fx, utc(2026, 6, 19, 22)) == closed(utc(2026, 6, 21, 21), utc(2026, 6, 26, 21))


def test_a_calendar_open_around_the_clock_looks_like_always() -> None:
    every_day = weekly([{"days": [*WEEKDAYS, "sat", "sun"], "open": "00:00", "close": "00:00"}])
    assert state(every_day, utc(2026, 6, 10, 12)) == CalendarState(True, 0.0, None)


def test_sessions_on_the_same_day_and_a_lunch_break() -> None:
    tokyo = weekly(
        [
            {"days": WEEKDAYS, "open": "09:00", "close": "11:30"},
            {"days": WEEKDAYS, "open": "12:30", "close": "15:30"},
        ],
        "Asia/Tokyo",
    )
    # Wednesday 2026-06-10, JST is UTC+9 all year
    assert state(tokyo, utc(2026, 6, 10, 1)) == opened(utc(2026, 6, 10, 0), utc(2026, 6, 10, 2, 30))
    assert state(tokyo, utc(2026, 6, 10, 3)) == closed(
        utc(2026, 6, 10, 3, 30), utc(2026, 6, 10, 6, 30)
    )


# --- holidays and early closes -------------------------------------------------------


def test_holiday_has_no_session() -> None:
    # Christmas Day 2026 is a Friday: from Thursday's close the next open is Monday
    christmas_eve = utc(2026, 12, 24, 22)
    assert state(XNYS_LIKE, christmas_eve) == closed(
        utc(2026, 12, 28, 14, 30), utc(2026, 12, 28, 21)
    )
    assert state(XNYS_LIKE, utc(2026, 12, 25, 16)).open is False
    # 2027-01-01 (Friday) too
    assert state(XNYS_LIKE, utc(2026, 12, 31, 22)) == closed(
        utc(2027, 1, 4, 14, 30), utc(2027, 1, 4, 21)
    )


def test_early_close() -> None:
    # Friday 2026-11-27 closes at 13:00 EST = 18:00 UTC instead of 21:00
    day = opened(utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18))
    assert state(XNYS_LIKE, utc(2026, 11, 27, 15)) == day
    assert state(XNYS_LIKE, utc(2026, 11, 27, 14)) == closed(day.session_open, day.session_close)
    assert state(XNYS_LIKE, utc(2026, 11, 27, 18)) == closed(
        utc(2026, 11, 30, 14, 30), utc(2026, 11, 30, 21)
    )


@pytest.mark.parametrize(
    ("early", "sessions_utc"),
    [
        ("12:00", [(0, 0, 2, 30)]),  # inside the break: the afternoon session is dropped
        ("11:00", [(0, 0, 2, 0)]),  # inside the morning session: it is cut
        ("14:00", [(0, 0, 2, 30), (3, 30, 5, 0)]),  # inside the afternoon session
    ],
)
def test_early_close_cuts_the_days_sessions(
    early: str, sessions_utc: list[tuple[int, ...]]
) -> None:
    tokyo = weekly(
        [
            {"days": WEEKDAYS, "open": "09:00", "close": "11:30"},
            {"days": WEEKDAYS, "open": "12:30", "close": "15:30"},
        ],
        "Asia/Tokyo",
        early_closes={dt.date(2026, 6, 10): early},
    )
    cal = calendar_from(tokyo)
    seen = []
    t = utc(2026, 6, 9, 23)
    while t < utc(2026, 6, 10, 12):
        s = cal.state(t)
        assert s.session_open is not None and s.session_close is not None
        if s.session_open >= utc(2026, 6, 10, 12):
            break
        seen.append((s.session_open, s.session_close))
        t = s.session_close
    want = [(utc(2026, 6, 10, a, b), utc(2026, 6, 10, c, d)) for a, b, c, d in sessions_utc]
    assert seen == want


def test_early_close_of_an_overnight_session_is_on_the_next_day() -> None:
    cal = weekly(
        [{"days": ["sun", "mon", "tue", "wed", "thu"], "open": "18:00", "close": "17:00"}],
        early_closes={dt.date(2026, 6, 15): "13:00"},
    )
    # Monday's session opens 18:00 and closes Tuesday 13:00 EDT (17:00 UTC)
    assert state(cal, utc(2026, 6, 16, 12)) == opened(utc(2026, 6, 15, 22), utc(2026, 6, 16, 17))


def test_no_session_in_view_has_no_timestamps() -> None:
    mondays = [dt.date(2026, 6, 15) + dt.timedelta(weeks=n) for n in range(60)]
    cal = weekly([{"days": ["mon"], "open": "09:00", "close": "10:00"}], holidays=mondays)
    assert state(cal, utc(2026, 6, 14)) == CalendarState(False, None, None)


def test_the_table_is_rebuilt_as_time_moves_on_either_way() -> None:
    cal = calendar_from(XNYS_LIKE)
    assert cal.state(utc(2026, 6, 10, 16)).session_open == utc(2026, 6, 10, 13, 30)
    assert cal.state(utc(2027, 6, 9, 16)).session_open == utc(2027, 6, 9, 13, 30)
    assert cal.state(utc(2025, 6, 11, 16)).session_open == utc(2025, 6, 11, 13, 30)


def test_merge_joins_touching_and_overlapping_sessions() -> None:
    assert merge([(5, 6), (1, 2), (2, 3), (2.5, 4), (7, 7)]) == [(1, 4), (5, 6)]
    table = SessionTable.of([(10, 20), (30, 40)], 0)
    assert table.state(5) == closed(10, 20)
    assert table.state(20) == closed(30, 40)
    assert table.state(40) == CalendarState(False, None, None)
    # sessions that may extend past what the table was built from
    edges = SessionTable((10, 30), (20, 40), 0, start_unknown=True, end_unknown=True)
    assert edges.state(15) == opened(0, 20)
    assert edges.state(5) == closed(10, 20)  # a session still to come has a known open
    assert edges.state(35) == opened(30, None)


# --- always, warm-up and configuration ---------------------------------------------------


def test_always_is_built_in_open_with_no_close_and_no_warmup() -> None:
    cals = build_calendars([])
    assert list(cals) == ["always"]
    assert cals["always"] is ALWAYS_CALENDAR
    assert cals["always"].warmup == 0
    for now in (0.0, utc(2026, 12, 25, 3), utc(2030, 1, 1)):
        assert cals["always"].state(now) == CalendarState(True, 0.0, None)


def test_warmup_default_configured_and_zero() -> None:
    config = cfg.parse("""
calendars:
  - {name: a, exchange: XNYS}
  - {name: b, exchange: XNYS, warmup: 10m}
  - {name: c, exchange: XNYS, warmup: 0s}
""")
    cals = build_calendars(config.calendars)
    assert [(c.name, c.warmup) for c in cals.values()] == [
        ("always", 0.0),
        ("a", 300.0),
        ("b", 600.0),
        ("c", 0.0),
    ]


def test_every_target_follows_always_unless_told() -> None:
    config = cfg.parse("""
calendars:
  - name: xnys
    timezone: America/New_York
    sessions: [{days: [mon, tue, wed, thu, fri], open: "09:30", close: "16:00"}]
redis:
  - {name: a, address: "127.0.0.1:1"}
  - {name: b, address: "127.0.0.1:2", calendar: xnys}
""")
    assert [t.calendar for t in config.targets["redis"]] == ["always", "xnys"]
    assert config.calendars[0].warmup == 300
    assert config.calendars[0].sessions is not None
    assert config.calendars[0].sessions[0].open == dt.time(9, 30)


# --- exchange calendars ----------------------------------------------------------


def exchange(code: str) -> CalendarConfig:
    return CalendarConfig.model_validate({"name": code.lower(), "exchange": code})


@pytest.mark.parametrize(
    ("code", "now", "expected"),
    [
        # XNYS: Christmas Day 2026 closed, the 24th closes early at 13:00 EST
        ("XNYS", utc(2026, 12, 24, 15), opened(utc(2026, 12, 24, 14, 30), utc(2026, 12, 24, 18))),
        ("XNYS", utc(2026, 12, 25, 15), closed(utc(2026, 12, 28, 14, 30), utc(2026, 12, 28, 21))),
        # the day after Thanksgiving closes early
        ("XNYS", utc(2026, 11, 27, 17), opened(utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18))),
        # Independence Day observed on Friday 2026-07-03; summer time
        ("XNYS", utc(2026, 7, 2, 21), closed(utc(2026, 7, 6, 13, 30), utc(2026, 7, 6, 20))),
        # XLON: 24 and 31 December close at 12:30; 25 and 28 (Boxing Day observed) closed
        ("XLON", utc(2026, 12, 24, 12), opened(utc(2026, 12, 24, 8), utc(2026, 12, 24, 12, 30))),
        ("XLON", utc(2026, 12, 24, 13), closed(utc(2026, 12, 29, 8), utc(2026, 12, 29, 16, 30))),
        ("XLON", utc(2026, 12, 31, 13), closed(utc(2027, 1, 4, 8), utc(2027, 1, 4, 16, 30))),
        ("XLON", utc(2026, 6, 1, 7), opened(utc(2026, 6, 1, 7), utc(2026, 6, 1, 15, 30))),
        # XHKG: the lunch break splits the day into two sessions
        ("XHKG", utc(2026, 6, 1, 3), opened(utc(2026, 6, 1, 1, 30), utc(2026, 6, 1, 4))),
        ("XHKG", utc(2026, 6, 1, 4, 30), closed(utc(2026, 6, 1, 5), utc(2026, 6, 1, 8))),
    ],
)
def test_exchange_calendars(code: str, now: float, expected: CalendarState) -> None:
    assert state(exchange(code), now) == expected


def test_exchange_tables_are_read_once_and_shared() -> None:
    now = utc(2026, 6, 1, 9)
    assert exchange_table("XLON", now) is exchange_table("XLON", now + 86400)
    a, b = calendar_from(exchange("XLON")), calendar_from(exchange("XLON"))
    assert a.state(now) == b.state(now) == opened(utc(2026, 6, 1, 7), utc(2026, 6, 1, 15, 30))


def test_exchange_calendar_without_the_package(tmp_path: Path) -> None:
    """Start-up without exchange-calendars works; only ``exchange:`` needs it."""
    weekly_only = tmp_path / "weekly.yml"
    weekly_only.write_text("""
calendars:
  - name: xnys
    timezone: America/New_York
    sessions: [{days: [mon], open: "09:30", close: "16:00"}]
""")
    with_exchange = tmp_path / "exchange.yml"
    with_exchange.write_text(weekly_only.read_text() + "  - {name: xlon, exchange: XLON}\n")
    block = (
        "import sys; sys.modules['exchange_calendars'] = None;"
        "from exporter.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    for path, code in ((weekly_only, 0), (with_exchange, 2)):
        out = subprocess.run(
            [sys.executable, "-c", block, "--config", str(path), "--check-config"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=dict(os.environ),
        )
        assert out.returncode == code, out.stderr
    assert out.stderr.strip() == (
        f"{with_exchange}: calendars[1].exchange: needs the exchange-calendars package "
        "(pip install 'tradeops-exporter[calendars]')"
    )


def test_every_calendar_problem_names_its_field() -> None:
    with pytest.raises(ConfigError) as err:
        cfg.parse(
            """
calendars:
  - {name: a, exchange: XNYS}
redis:
  - {name: r, address: "127.0.0.1:1", calendar: b}
  - {name: s, address: "127.0.0.1:1", calendar: a}
modules:
  m: {kind: redis, allowed_targets: [".*"], params: {calendar: c}}
""",
            "c.yml",
        )
    assert err.value.lines() == [
        "c.yml: redis[0].calendar: unknown calendar 'b'; defined: a, always",
        "c.yml: modules.m.params.calendar: unknown calendar 'c'; defined: a, always",
    ]
