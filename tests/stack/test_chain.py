"""The chain's own arithmetic, without starting it: the bundle override of a
speed, Alertmanager timings scaled, durations both tools accept, the closed
calendar (the end-to-end run is tests/detection)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import yaml

from bundle import build
from bundle.routes import prom_duration, routes_for
from exporter.calendars import CalendarConfig, calendar_from
from stack.alerting import SHIPPED_CONFIG
from stack.chain import CLOSED, FAST, SHIPPED, _seconds, closed_calendar, scale_timings


def test_durations_are_whole_seconds_or_milliseconds() -> None:
    assert [_seconds(v) for v in (1, 15.0, 0.8, 1.5, 0)] == ["1s", "15s", "800ms", "1500ms", "0s"]
    assert prom_duration(_seconds(0.8)) == 0.8


def test_the_fast_override_scales_every_for_and_keeps_the_floors(tmp_path: Path) -> None:
    build.write(tmp_path, FAST.override)
    shipped = {r: yaml.safe_load((build.RULES_DIR / r).read_text()) for r in ("redis.yml",)}
    fast = yaml.safe_load((tmp_path / "redis.yml").read_text())
    for group, ours in zip(shipped["redis.yml"]["groups"], fast["groups"], strict=True):
        for theirs, mine in zip(group["rules"], ours["rules"], strict=True):
            if "for" in theirs:
                want = max(prom_duration(theirs["for"]) * FAST.time_scale, 2 * FAST.interval)
                assert prom_duration(mine["for"]) == want, mine["alert"]
    assert SHIPPED.override.startswith("{_config+:: {timeScale: 1,")


def test_alertmanager_timings_scale_with_a_floor_and_zero_stays_zero() -> None:
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    labels = {"alertname": "RedisDown", "severity": "critical", "target": "x"}
    before = routes_for(config, labels)
    scale_timings(config, 0.05)
    after = routes_for(config, labels)
    for old, new in zip(before, after, strict=True):
        assert new.group_wait == max(1.0, old.group_wait * 0.05)
        assert new.group_interval == max(1.0, old.group_interval * 0.05)
    (watchdog,) = routes_for(config, {"alertname": "Watchdog"})
    assert watchdog.group_wait == 0
    unchanged = yaml.safe_load(SHIPPED_CONFIG.read_text())
    scale_timings(unchanged, 1)
    assert unchanged == yaml.safe_load(SHIPPED_CONFIG.read_text())


def test_the_scaled_config_is_one_amtool_accepts(tmp_path: Path) -> None:
    config = yaml.safe_load(SHIPPED_CONFIG.read_text())
    scale_timings(config, FAST.time_scale)
    # templates and secrets are checked elsewhere (tests/alertmanager); timings here
    config.pop("templates", None)
    text = yaml.safe_dump(config).replace("/etc/alertmanager/secrets/", f"{tmp_path}/")
    path = tmp_path / "am.yml"
    path.write_text(text)
    out = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_closed_calendar_has_no_session_today_or_tomorrow() -> None:
    day = dt.date(2026, 12, 1)
    cal = calendar_from(CalendarConfig.model_validate(closed_calendar(day)))
    noon = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC).timestamp()
    assert closed_calendar(day)["name"] == CLOSED
    for hours in (0, 11, 23, 30, 47):
        assert not cal.state(noon - 12 * 3600 + hours * 3600 + 60).open
    assert cal.state(noon + 2 * 86400).open
