"""The demo: the local stack, simulated traffic, the exporter, Prometheus and
Alertmanager, all on free loopback ports in a temporary directory."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .services import Alertmanager, Exporter, Postgres, Prometheus, Redis, Service, Tansu
from .sim_redis import HEARTBEATS, STREAM, RedisTraffic

REPO = Path(__file__).resolve().parent.parent


def exporter_config(redis: Redis) -> str:
    """The demo's exporter configuration."""
    heartbeats = "\n".join(f"      - {{name: {h}, key: 'heartbeat:{h}'}}" for h in HEARTBEATS)
    return f"""
global: {{interval: 5s, timeout: 3s}}
redis:
  - name: cache
    address: "{redis.address}"
    canary: {{ttl: 60s}}
    heartbeats:
{heartbeats}
    streams:
      - {{name: orders, key: "{STREAM}"}}
modules:
  redis:
    kind: redis
    allowed_targets: ['127\\.0\\.0\\.1:\\d+']
"""


def query(prometheus: Prometheus, promql: str) -> list[dict[str, Any]]:
    """Instant query against the demo's Prometheus."""
    url = f"http://{prometheus.address}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


class Demo:
    """Starts and stops everything in order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.services: list[Service] = []
        self.traffic: RedisTraffic | None = None

    def _start(self, service: Service) -> Service:
        service.start()
        self.services.append(service)
        return service

    async def start(self) -> tuple[Exporter, Prometheus, Alertmanager]:
        """Start the backbone, the traffic, the exporter, Alertmanager and Prometheus."""
        redis = Redis(self.root)
        self._start(redis)
        self._start(Postgres(self.root))
        self._start(Tansu(self.root))
        self.traffic = RedisTraffic(redis.address)
        self.traffic.start()
        config = self.root / "exporter.yml"
        config.write_text(exporter_config(redis))
        exporter = Exporter(self.root, config)
        self._start(exporter)
        alertmanager = Alertmanager(self.root)
        self._start(alertmanager)
        rules = sorted(str(p) for p in (REPO / "rules").glob("*.yml"))
        prometheus = Prometheus(
            self.root,
            scrape_targets=[exporter.address],
            rule_files=rules,
            alertmanager=alertmanager.address,
            scrape_interval="5s",
        )
        self._start(prometheus)
        return exporter, prometheus, alertmanager

    async def stop(self) -> None:
        """Stop the traffic and every service, newest first."""
        if self.traffic is not None:
            await self.traffic.stop()
        for service in reversed(self.services):
            service.stop()


async def run(duration: float | None, check: bool, keep: bool) -> int:
    """Run the demo until interrupted (or for ``duration`` seconds)."""
    root = Path(tempfile.mkdtemp(prefix="tradeops-demo-"))
    demo = Demo(root)
    status = 0
    try:
        exporter, prometheus, alertmanager = await demo.start()
        print(
            f"""
tradeops demo is running (files in {root})
  exporter      http://{exporter.address}/          metrics: http://{exporter.address}/metrics
  prometheus    http://{prometheus.address}/graph   try: tradeops_up
  alertmanager  http://{alertmanager.address}/
Press Ctrl-C to stop.""",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
        if check:
            status = verify(prometheus)
    finally:
        await demo.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return status


def verify(prometheus: Prometheus) -> int:
    """Exit status for ``--check``: Prometheus scrapes the exporter and every target is up."""
    scrape = query(prometheus, 'up{job="tradeops"}')
    targets = query(prometheus, "tradeops_up")
    ok = bool(scrape) and all(r["value"][1] == "1" for r in scrape + targets) and bool(targets)
    for r in targets:
        print(f"  {r['metric'].get('kind')}/{r['metric'].get('target')}: up={r['value'][1]}")
    print("demo check:", "ok" if ok else "FAILED")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m stack demo [--duration S] [--check] [--keep]``."""
    p = argparse.ArgumentParser(prog="python -m stack")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the demo stack")
    d.add_argument("--duration", type=float, help="stop after this many seconds")
    d.add_argument(
        "--check",
        action="store_true",
        help="before stopping, verify that Prometheus sees every target up",
    )
    d.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    return asyncio.run(run(args.duration, args.check, args.keep))
