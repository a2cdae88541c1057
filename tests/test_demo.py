"""The README's demo command, run briefly: every service starts, Prometheus
scrapes the exporter and sees every target up, everything stops."""

from __future__ import annotations

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
    ):
        assert f"{target}: up=1" in out.stdout
