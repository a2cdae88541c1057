"""The README's demo command, run briefly: every service starts, Prometheus
scrapes the exporter and sees every target up, the shipped Alertmanager config
delivers the Watchdog to the demo's dead-man's-switch stand-in (printed as it
arrives), everything stops."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_demo_runs_and_prometheus_sees_every_target_up() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stack", "demo", "--duration", "25", "--check"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "demo check: ok" in out.stdout
    assert ", 0 failing, 0 not evaluated" in out.stdout
    assert "Watchdog(firing)" in out.stdout
    # the sinks ran: the Watchdog reached the heartbeat endpoint within the 25 s
    pings = re.findall(
        r"^\d\d:\d\d:\d\d heartbeat +deadmans-switch +firing +Watchdog", out.stdout, re.M
    )
    assert pings, out.stdout
    (sinks,) = re.findall(
        r"^  sinks: (\d+) notifications, (\d+) Watchdog pings .*, (\d+) refused$", out.stdout, re.M
    )
    assert int(sinks[1]) >= 1 and sinks[2] == "0", out.stdout
    for target in (
        "redis/cache",
        "fix/venue",
        "fix_store/venue-sim",
        "timescale/marketdata",
        "eventbus/runtime",
        "kafka/marketdata",
        "backups/pg-dumps",
        "backups/pg-pgbackrest",
        "backups/pg-restore-drill",
        "drills/shift-start",
    ):
        assert f"{target}: up=1" in out.stdout
