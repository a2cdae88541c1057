"""Heartbeat keys and streams: timestamps parsed, thresholds exported with their calendar."""

from __future__ import annotations

import time

import pytest

from exporter.kinds.redis.keys import parse_heartbeat, stream_id_seconds
from stack import Redis

from ...helpers import Running, scrape_until, value, with_label
from .support import Factory, admin_client


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"1795400000", 1795400000.0),
        (b"1795400000123", 1795400000.123),
        (b"1795400000.5", 1795400000.5),
        (b"soon", None),
        (b"-5", None),
        (None, None),
        (b"nan", None),
    ],
)
def test_parse_heartbeat(raw: bytes | None, expected: float | None) -> None:
    assert parse_heartbeat(raw) == (pytest.approx(expected) if expected else None)


@pytest.mark.parametrize(
    ("entry_id", "expected"),
    [
        (b"1795400000123-0", 1795400000.123),
        ("1795400000123-7", 1795400000.123),
        (b"0-0", None),  # an empty stream's last-generated-id
        (b"", None),
        (None, None),
        (b"garbled", None),
    ],
)
def test_stream_id_seconds(entry_id: bytes | str | None, expected: float | None) -> None:
    assert stream_id_seconds(entry_id) == (pytest.approx(expected) if expected else None)


async def test_heartbeat_max_gap_is_exported_with_the_resolved_calendar(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    with admin_client(redis_server) as admin:
        admin.set("hb:ingest", int(time.time()))
        admin.xadd("hb:stream", {"not": "a timestamp"})
    run: Running = await exporter_factory(f"""
calendars:
  - name: xnys
    timezone: America/New_York
    sessions: [{{days: [mon, tue, wed, thu, fri], open: "09:30", close: "16:00"}}]
  - {{name: xlon, exchange: XLON}}
redis:
  - name: cache
    address: {redis_server.address}
    interval: 1s
    timeout: 500ms
    calendar: xnys
    heartbeats:
      - {{name: ingest, key: "hb:ingest"}}
      - {{name: risk, key: "hb:risk", max_gap: 5m, calendar: xlon}}
      - {{name: clock, key: "hb:clock", max_gap: 1500ms, calendar: always}}
      - {{name: wrongtype, key: "hb:stream"}}
  - name: plain
    address: {redis_server.address}
    interval: 1s
    timeout: 500ms
    heartbeats:
      - {{name: ingest, key: "hb:ingest"}}
""")
    m = await scrape_until(
        run,
        lambda m: (
            value(m, "tradeops_up", kind="redis", target="cache") == 1
            and value(m, "tradeops_up", kind="redis", target="plain") == 1
        ),
    )
    assert with_label(m, "tradeops_redis_heartbeat_max_gap_seconds") == {
        # the default under the target's calendar
        frozenset({("target", "cache"), ("heartbeat", "ingest"), ("calendar", "xnys")}): 60,
        # its own maximum gap and calendar; present although the key does not exist
        frozenset({("target", "cache"), ("heartbeat", "risk"), ("calendar", "xlon")}): 300,
        frozenset({("target", "cache"), ("heartbeat", "clock"), ("calendar", "always")}): 1.5,
        # a key holding another type: still its threshold
        frozenset({("target", "cache"), ("heartbeat", "wrongtype"), ("calendar", "xnys")}): 60,
        # a target without a calendar follows always
        frozenset({("target", "plain"), ("heartbeat", "ingest"), ("calendar", "always")}): 60,
    }
    assert value(m, "tradeops_redis_heartbeat_present", target="cache", heartbeat="risk") == 0
    assert value(m, "tradeops_redis_heartbeat_present", target="cache", heartbeat="wrongtype") == 0
    assert value(m, "tradeops_redis_heartbeat_present", target="cache", heartbeat="ingest") == 1

    redis_server.stop()  # a failed run withdraws the thresholds with the data
    m = await scrape_until(
        run, lambda m: value(m, "tradeops_up", kind="redis", target="cache") == 0
    )
    assert with_label(m, "tradeops_redis_heartbeat_max_gap_seconds", target="cache") == {}
