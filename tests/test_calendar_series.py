"""The calendar series: every calendar's state and each target's calendar, kept
current as time passes (without a reload) and replaced on reload."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporter import config as cfg
from exporter.calendar_series import CalendarRefresher
from exporter.calendars import build_calendars
from exporter.snapshot import SnapshotStore
from stack import Redis

from .helpers import Running, parse, scrape_until, value, with_label

Factory = Callable[..., Any]

XNYS = """
  - name: xnys
    timezone: America/New_York
    sessions:
      - {days: [mon, tue, wed, thu, fri], open: "09:30", close: "16:00"}
    holidays: [2026-12-25]
"""


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return dt.datetime(y, mo, d, h, mi, tzinfo=dt.UTC).timestamp()


class Clock:
    """A wall clock the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_refresher_follows_the_clock_and_stores_only_changes() -> None:
    store = SnapshotStore()
    clock = Clock(utc(2026, 6, 10, 13))  # Wednesday 09:00 in New York
    refresher = CalendarRefresher(store, clock)
    config = cfg.parse("calendars:" + XNYS)
    await refresher.configure(build_calendars(config.calendars), [("redis", "a", "xnys")])
    try:
        m = parse(store.body().decode())
        assert value(m, "tradeops_calendar_open", calendar="xnys") == 0
        assert value(m, "tradeops_calendar_session_open_timestamp_seconds", calendar="xnys") == utc(
            2026, 6, 10, 13, 30
        )
        assert value(
            m, "tradeops_calendar_session_close_timestamp_seconds", calendar="xnys"
        ) == utc(2026, 6, 10, 20)
        assert value(m, "tradeops_calendar_warmup_seconds", calendar="xnys") == 300
        assert value(m, "tradeops_calendar_open", calendar="always") == 1
        assert value(m, "tradeops_calendar_session_open_timestamp_seconds", calendar="always") == 0
        assert with_label(m, "tradeops_calendar_session_close_timestamp_seconds") == {
            frozenset({("calendar", "xnys")}): utc(2026, 6, 10, 20)
        }
        assert value(m, "tradeops_calendar_warmup_seconds", calendar="always") == 0
        assert with_label(m, "tradeops_target_calendar_info") == {
            frozenset({("kind", "redis"), ("target", "a"), ("calendar", "xnys")}): 1
        }

        body = store.body()
        clock.now += 60
        assert refresher.refresh() is False  # nothing changed: the cached body stays
        assert store.body() is body

        clock.now = utc(2026, 6, 10, 13, 30)  # the open
        assert refresher.refresh() is True
        m = parse(store.body().decode())
        assert value(m, "tradeops_calendar_open", calendar="xnys") == 1
        assert value(m, "tradeops_calendar_session_open_timestamp_seconds", calendar="xnys") == utc(
            2026, 6, 10, 13, 30
        )

        clock.now = utc(2026, 12, 24, 21)  # Christmas Eve after the close: Monday is next
        assert refresher.refresh() is True
        m = parse(store.body().decode())
        assert value(m, "tradeops_calendar_open", calendar="xnys") == 0
        assert value(m, "tradeops_calendar_session_open_timestamp_seconds", calendar="xnys") == utc(
            2026, 12, 28, 14, 30
        )
    finally:
        await refresher.stop()
    assert refresher.task is None


def _soon(seconds: float) -> tuple[str, float]:
    """A calendar (UTC, every day) whose one-hour session opens ``seconds`` from now
    (on a whole second), and that open time."""
    opens = float(int(time.time() + seconds) + 1)
    start = dt.datetime.fromtimestamp(opens, dt.UTC)
    end = start + dt.timedelta(hours=1)
    text = f"""
  - name: soon
    timezone: UTC
    sessions:
      - days: [mon, tue, wed, thu, fri, sat, sun]
        open: "{start:%H:%M:%S}"
        close: "{end:%H:%M:%S}"
    warmup: 0s
"""
    return text, opens


async def test_a_session_opening_flips_the_series_without_a_reload(
    exporter_factory: Factory,
) -> None:
    text, opens = _soon(3)
    run: Running = await exporter_factory("calendars:" + text)
    m = await run.scrape()
    assert value(m, "tradeops_calendar_open", calendar="soon") == 0
    assert value(m, "tradeops_calendar_session_open_timestamp_seconds", calendar="soon") == opens
    assert value(m, "tradeops_calendar_warmup_seconds", calendar="soon") == 0
    loaded = value(m, "tradeops_exporter_config_last_reload_success_timestamp_seconds")

    m = await scrape_until(
        run, lambda m: value(m, "tradeops_calendar_open", calendar="soon") == 1, timeout=10
    )
    assert time.time() >= opens
    assert value(m, "tradeops_calendar_session_open_timestamp_seconds", calendar="soon") == opens
    close = value(m, "tradeops_calendar_session_close_timestamp_seconds", calendar="soon")
    assert close == opens + 3600
    assert value(m, "tradeops_exporter_config_last_reload_success_timestamp_seconds") == loaded


async def test_the_body_is_not_rebuilt_while_nothing_changes(exporter_factory: Factory) -> None:
    run: Running = await exporter_factory("calendars:" + XNYS)
    task = run.exporter.calendars.task
    assert task is not None
    body = run.exporter.store.body()
    await asyncio.sleep(2.5)  # two refreshes or more
    assert not task.done()
    assert run.exporter.store.body() is body


def _redis(server: Redis, name: str, calendar: str | None = None) -> str:
    line = f"  - {{name: {name}, address: {server.address}, interval: 1s, timeout: 500ms"
    return line + (f", calendar: {calendar}}}\n" if calendar else "}\n")


async def test_reload_replaces_calendars_and_target_calendars(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(
        "calendars:"
        + XNYS
        + "redis:\n"
        + _redis(redis_server, "a", "xnys")
        + _redis(redis_server, "b")
    )
    m = await run.scrape()
    assert {dict(k)["calendar"] for k in with_label(m, "tradeops_calendar_open")} == {
        "always",
        "xnys",
    }
    assert with_label(m, "tradeops_target_calendar_info") == {
        frozenset({("kind", "redis"), ("target", "a"), ("calendar", "xnys")}): 1,
        frozenset({("kind", "redis"), ("target", "b"), ("calendar", "always")}): 1,
    }

    Path(run.exporter.config_path).write_text(
        "calendars:\n  - {name: xlon, exchange: XLON, warmup: 10m}\n"
        "redis:\n" + _redis(redis_server, "b", "xlon") + _redis(redis_server, "c")
    )
    assert (await run.get("/-/reload", method="POST"))[0] == 200
    m = await run.scrape()
    assert {dict(k)["calendar"] for k in with_label(m, "tradeops_calendar_open")} == {
        "always",
        "xlon",
    }
    assert value(m, "tradeops_calendar_warmup_seconds", calendar="xlon") == 600
    assert value(m, "tradeops_calendar_session_open_timestamp_seconds", calendar="xlon")
    assert value(m, "tradeops_calendar_session_close_timestamp_seconds", calendar="xlon")
    assert with_label(m, "tradeops_target_calendar_info") == {
        frozenset({("kind", "redis"), ("target", "b"), ("calendar", "xlon")}): 1,
        frozenset({("kind", "redis"), ("target", "c"), ("calendar", "always")}): 1,
    }

    # a bad file keeps the running calendars
    Path(run.exporter.config_path).write_text("calendars:\n  - {name: x, exchange: NOPE}\n")
    assert (await run.get("/-/reload", method="POST"))[0] == 500
    m = await run.scrape()
    assert value(m, "tradeops_calendar_warmup_seconds", calendar="xlon") == 600
    assert run.exporter.calendars.task is not None and not run.exporter.calendars.task.done()
