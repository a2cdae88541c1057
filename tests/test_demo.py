"""The README's demo command, run briefly: every service starts (a TimescaleDB, a
Sentinel group and a Redis Cluster among them), Prometheus
scrapes the exporter and sees every target up, the shipped Alertmanager config
delivers the Watchdog to the demo's dead-man's-switch stand-in (printed as it
arrives), every panel and variable query of every dashboard returns data live
or is listed as expected empty (bundle.live), everything stops."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bundle import lint, live

from .helpers import report

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
        "redis/sessions",  # through its Sentinels
        "redis/sessions-replica",
        "redis/trades",  # the cluster
        "fix/venue",
        "fix_store/venue-sim",
        "timescale/marketdata",
        "timescale/tsdb",  # the hypertable, on TimescaleDB (PGlite)
        "eventbus/runtime",
        "kafka/marketdata",
        "backups/pg-dumps",
        "backups/pg-pgbackrest",
        "backups/pg-restore-drill",
        "drills/shift-start",
    ):
        assert f"{target}: up=1" in out.stdout
    _assert_dashboards_live(out.stdout)


def _assert_dashboards_live(stdout: str) -> None:
    """The live-query figures: every query of every dashboard ran, none failed or came
    back empty unlisted, no entry of the expected-empty list is stale (printed for the
    end of the test run)."""
    (figures,) = re.findall(
        r"^dashboards live: (\d+) dashboards, (\d+) queries \((\d+) variables\),"
        r" (\d+) returned data, (\d+) expected empty \(listed\), (\d+) waiting for rules"
        r" not due yet, (\d+) unexpectedly empty, (\d+) failing, (\d+) stale entries$",
        stdout,
        re.M,
    )
    boards, queries, variables, data, listed, waiting, unexpected, failing, stale = map(
        int, figures
    )
    assert (unexpected, failing, stale) == (0, 0, 0), stdout
    built = live.load_dashboards(built=True)  # the committed build, equal to a fresh one
    assert boards == len(built) >= 2
    assert queries == sum(len(lint.queries(d)) for d in built)
    assert variables == sum(v.get("type") == "query" for d in built for v in lint.variables(d))
    assert data + listed + waiting == queries
    assert waiting <= 10, stdout  # series of rule groups not due yet (a 2m group: 3 series)
    assert listed >= len(live.load_expected())  # an entry names one query or more
    assert data >= 0.8 * queries, stdout
    report(next(line for line in stdout.splitlines() if line.startswith("dashboards live: ")))
