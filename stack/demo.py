"""The demo: the local stack, simulated traffic, the exporter, Prometheus and
Alertmanager with the shipped configuration, delivering to local Slack,
PagerDuty and dead-man's-switch stand-ins that print every notification, all on
free loopback ports in a temporary directory."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

from bundle import live

from . import sim_fix
from .alerting import wire_config
from .demo_targets import (
    PG_PASSWORD_ENV,
    cluster_target,
    eventbus_target,
    exporter_config,
    fix_targets,
    hypertable_dsn,
    hypertable_target,
    redis_target,
    sentinel_targets,
)
from .exporter import Exporter
from .fix import FixAcceptor
from .pglite import TimescaleLite
from .postgres import Postgres
from .prometheus import Alertmanager, Prometheus
from .redis_ha import RedisCluster, SentinelGroup
from .redis_server import Redis
from .sim_backups import BackupSim
from .sim_eventbus import EventBusSim
from .sim_hypertable import HypertableTicks
from .sim_kafka import KafkaSimulator
from .sim_redis import RedisTraffic
from .sim_timescale import SCHEMA, TABLE, TickSimulator
from .sim_timescale import exporter_config as timescale_target
from .sinks import Notification, Rejection, Sinks
from .tansu import Tansu


class Process(Protocol):
    """A service, or a group of them, started and stopped as one."""

    def start(self) -> Any:
        """Start and wait until it answers."""

    def stop(self) -> None:
        """Stop (and wait for) every process."""


ProcessT = TypeVar("ProcessT", bound=Process)

REPO = Path(__file__).resolve().parent.parent
REDIS_MAXMEMORY = "256mb"
"""The demo Redis' memory limit (noeviction): a few MB of it are used, far from
RedisMemoryNearMax's 90 %, and nothing is evicted."""
RUNTIME_JOB = "trading-runtime"
"""The scrape job of the runtime stand-in's /metrics: the bundle config's
``sla.runtimeSelector``."""
SENTINEL_MASTER = "sessions"
"""The name the Sentinels monitor the session store's primary by."""
SENTINEL_DOWN_AFTER_MS = 5000
"""A Sentinel declares the primary down after this long without an answer: long
enough that a pause of a loaded machine is not taken for a failure (the group's
default, 1 s, keeps the tests' failovers quick)."""
CLUSTER_NODE_TIMEOUT_MS = 5000
"""A cluster node is declared failing after this long without an answer."""


def query(prometheus: Prometheus, promql: str) -> list[dict[str, Any]]:
    """Instant query against the demo's Prometheus."""
    url = f"http://{prometheus.address}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def api(prometheus: Prometheus, path: str) -> Any:
    """GET a Prometheus API path and return its ``data``."""
    with urllib.request.urlopen(f"http://{prometheus.address}{path}", timeout=5) as resp:
        return json.load(resp)["data"]


def rule_health(prometheus: Prometheus) -> tuple[int, int, list[str], list[str], int]:
    """Groups, rules, rules not evaluated yet, rules whose evaluation failed
    (``name: error``) and rules not due yet (their group's interval is longer than
    Prometheus has been running) in the demo's Prometheus."""
    groups = api(prometheus, "/api/v1/rules")["groups"]
    started = api(prometheus, "/api/v1/status/runtimeinfo")["startTime"]
    uptime = time.time() - datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
    rules = [(g, r) for g in groups for r in g["rules"]]
    unknown = [r["name"] for g, r in rules if r["health"] == "unknown" and g["interval"] <= uptime]
    not_due = sum(r["health"] == "unknown" and g["interval"] > uptime for g, r in rules)
    errors = [f"{r['name']}: {r.get('lastError', '')}" for _, r in rules if r["health"] == "err"]
    return len(groups), len(rules), unknown, errors, not_due


class Demo:
    """Starts and stops everything in order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.services: list[Process] = []
        self.starting: list[asyncio.Task[Any]] = []
        """Services starting in threads: waited for before anything is stopped."""
        self.stoppers: list[Callable[[], Awaitable[None]]] = []
        self.bus: EventBusSim | None = None
        self.sinks = Sinks(on_notification=show_notification, on_rejection=show_rejection)
        self.drills = root / "drills"
        self.pids: dict[str, int] = {}

    def _start(self, service: ProcessT) -> ProcessT:
        service.start()
        self.services.append(service)
        return service

    def _start_in_thread(self, service: ProcessT) -> asyncio.Task[ProcessT]:
        """Start ``service`` in a thread while the loop goes on with the others."""
        task = asyncio.ensure_future(asyncio.to_thread(self._start, service))
        self.starting.append(task)
        return task

    def _high_availability(self) -> tuple[SentinelGroup, RedisCluster]:
        """The Sentinel group and the cluster, with the demo's timings."""
        group = SentinelGroup(self.root / "sentinel", master=SENTINEL_MASTER)
        for sentinel in group.sentinels:
            sentinel.down_after_ms = SENTINEL_DOWN_AFTER_MS
            sentinel.failover_timeout_ms = 3 * SENTINEL_DOWN_AFTER_MS
        cluster = RedisCluster(self.root / "cluster", node_timeout_ms=CLUSTER_NODE_TIMEOUT_MS)
        return group, cluster

    async def start(self) -> tuple[Exporter, Prometheus, Alertmanager]:
        """Start the backbone, the traffic, the exporter, Alertmanager and Prometheus."""
        # the slow starters (PGlite compiles its WASM, the cluster assigns its slots)
        # start in threads meanwhile
        group, cluster = self._high_availability()
        lite_started = self._start_in_thread(TimescaleLite(self.root))
        ha_started = [self._start_in_thread(group), self._start_in_thread(cluster)]
        redis = self._start(Redis(self.root, maxmemory=REDIS_MAXMEMORY))
        postgres = self._start(Postgres(self.root))
        tansu = self._start(Tansu(self.root))
        venue = self._start(FixAcceptor(self.root))
        # restarts PostgreSQL once (archive_mode for pgBackRest): before anyone connects
        backups = BackupSim(postgres, self.root, table=f"{SCHEMA}.{TABLE}")
        await asyncio.to_thread(backups.archive)
        ticks = TickSimulator(postgres.dsn(), interval=0.5)
        await ticks.start()  # the tick table exists before the first dump and drill
        self.stoppers.append(ticks.stop)
        await asyncio.to_thread(backups.prepare)
        backup_task = asyncio.create_task(
            backups.run(interval=30.0, pgbackrest_every=4, drill_every=6)
        )
        self.stoppers.append(lambda: cancel_task(backup_task))
        kafka = KafkaSimulator(tansu.bootstrap)
        await kafka.start()
        self.stoppers.append(kafka.stop)

        traffic = RedisTraffic(redis.address)
        traffic.start()
        self.stoppers.append(traffic.stop)
        lite = await lite_started
        # ticks into a hypertable, its compression policy run on schedule (no
        # background workers in PGlite)
        hypertable = HypertableTicks(hypertable_dsn(lite), run_jobs=True)
        await hypertable.start()
        self.stoppers.append(hypertable.stop)
        await asyncio.gather(*ha_started)
        fix_stop = asyncio.Event()
        fix_task = asyncio.create_task(sim_fix.run(venue.address, stop=fix_stop))
        self.stoppers.append(lambda: stop_fix_traffic(fix_stop, fix_task))
        self.bus = await EventBusSim("127.0.0.1", error_every=2000).start()
        self.stoppers.append(self.bus.stop)

        fix_active, fix_passive = fix_targets(venue)
        targets = {
            "fix": [fix_active],
            "fix_store": [fix_passive],
            "kafka": [{"name": "marketdata", "bootstrap_servers": tansu.bootstrap}],
            "redis": [redis_target(redis), *sentinel_targets(group), cluster_target(cluster)],
            "timescale": [
                timescale_target(postgres.address, "postgres", PG_PASSWORD_ENV, sla="30s"),
                hypertable_target(lite),
            ],
            "backups": yaml.safe_load(backups.exporter_config("15s", "10s"))["backups"],
            "eventbus": [eventbus_target(self.bus, redis)],
            "drills": [{"name": "shift-start", "path": str(self.drills)}],
        }
        self.drills.mkdir(exist_ok=True)
        config = self.root / "exporter.yml"
        config.write_text(exporter_config(targets))
        os.environ[PG_PASSWORD_ENV] = postgres.password
        exporter = self._start(Exporter(self.root, config))
        # the shipped Alertmanager config, its secrets and endpoints pointed at the sinks
        await self.sinks.start()
        self.stoppers.append(self.sinks.stop)
        wired = wire_config(self.sinks, self.root / "alertmanager-secrets")
        alertmanager = self._start(Alertmanager(self.root, config_text=wired.text))
        self.pids = {
            name: service.proc.pid
            for name, service in (
                ("redis", redis),
                ("sentinel-primary", group.primary),
                ("cluster-node", cluster.nodes[-1]),
            )
            if service.proc is not None
        }
        rules = sorted(str(p) for p in (REPO / "rules").glob("*.yml"))
        prometheus = Prometheus(
            self.root,
            scrape_targets=[exporter.address],
            jobs={RUNTIME_JOB: [self.bus.address]},  # the runtime contract's series
            rule_files=rules,
            alertmanager=alertmanager.address,
            scrape_interval="5s",
            resend_delay="5s",  # the Watchdog's first ping within seconds, not a minute
        )
        self._start(prometheus)
        return exporter, prometheus, alertmanager

    async def stop(self) -> None:
        """Stop the traffic and every service, newest first (once those still
        starting have started or failed)."""
        for task in self.starting:
            with contextlib.suppress(BaseException):
                await task
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                await stop()
        for service in reversed(self.services):
            service.stop()


def show_notification(n: Notification) -> None:
    """Print one delivery as it arrives: sink, receiver, status, alert, target, summary."""
    print(f"{time.strftime('%H:%M:%S')} {n.line()}", flush=True)


def show_rejection(r: Rejection) -> None:
    """Print a payload a stand-in refused (as Slack or PagerDuty would have)."""
    print(f"{time.strftime('%H:%M:%S')} REFUSED by {r.sink} ({r.path}): {r.reason}", flush=True)


async def cancel_task(task: asyncio.Task[Any]) -> None:
    """Cancel a background task and wait for it to end (whatever it raised)."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def stop_fix_traffic(stop: asyncio.Event, task: asyncio.Task[Any]) -> None:
    """Tell the FIX traffic to log out and wait (5 s at most) for it to finish."""
    stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 5)


async def run(duration: float | None, check: bool, keep: bool) -> int:
    """Run the demo until interrupted (or for ``duration`` seconds)."""
    root = Path(tempfile.mkdtemp(prefix="tradeops-demo-"))
    demo = Demo(root)
    status = 0
    try:
        exporter, prometheus, alertmanager = await demo.start()
        assert demo.bus is not None
        bus_base = demo.bus.url.removesuffix(demo.bus.path)
        redis_pid, sentinel_pid, node_pid = (
            demo.pids.get(name) for name in ("redis", "sentinel-primary", "cluster-node")
        )
        drill = (
            f".venv/bin/python -m bundle.drill --alertmanager http://{alertmanager.address}"
            f" --record-dir {demo.drills}"
        )
        print(
            f"""
tradeops demo is running (files in {root})
  exporter      http://{exporter.address}/          metrics: http://{exporter.address}/metrics
  prometheus    http://{prometheus.address}/graph   try: tradeops_up
  alertmanager  http://{alertmanager.address}/      the shipped alertmanager.yml
  slack, pagerduty, dead-man's switch: {demo.sinks.url} (every notification is printed below)
cause a fault and watch it page:
  degrade the event bus:  curl -X POST {bus_base}/degrade   (undo: {bus_base}/recover)
  hang Redis:             kill -STOP {redis_pid}   (undo: kill -CONT {redis_pid})
  fail over sessions:     kill -STOP {sentinel_pid}   (undo: kill -CONT {sentinel_pid})
  fail a cluster node:    kill -STOP {node_pid}   (undo: kill -CONT {node_pid})
  run a paging drill:     {drill}
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
            status = await verify(prometheus, demo.sinks)
    finally:
        await demo.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return status


async def verify(prometheus: Prometheus, sinks: Sinks, patience: float = 30.0) -> int:
    """Exit status for ``--check``: Prometheus scrapes the exporter and the runtime
    stand-in (every scrape job is up) and every target is up in one evaluation,
    within ``patience`` seconds (a run that failed on a loaded machine gets the next
    scrape to recover), and the Watchdog reached the dead-man's switch through
    Alertmanager with nothing refused by the sinks, and every dashboard query returns
    data or is listed as expected empty (``bundle.live``)."""
    end = time.monotonic() + patience
    while True:
        # in a thread: the simulators and the event-bus stand-in share this loop
        scrape = await asyncio.to_thread(query, prometheus, "up")
        targets = await asyncio.to_thread(query, prometheus, "tradeops_up")
        jobs = {r["metric"].get("job") for r in scrape}
        ok = jobs == {"tradeops", *prometheus.jobs} and bool(targets)
        ok = ok and all(r["value"][1] == "1" for r in scrape + targets)
        if ok or time.monotonic() > end:
            break
        await asyncio.sleep(1)
    for r in scrape:
        print(f"  job {r['metric'].get('job')} ({r['metric'].get('instance')}): up={r['value'][1]}")
    for r in targets:
        print(f"  {r['metric'].get('kind')}/{r['metric'].get('target')}: up={r['value'][1]}")
    ok = await _verify_rules(prometheus, end) and ok
    ok = await _verify_sinks(sinks, end) and ok
    ok = await live.check_in_subprocess(prometheus.address, prometheus.scrape_interval) and ok
    print("demo check:", "ok" if ok else "FAILED")
    return 0 if ok else 1


async def _verify_rules(prometheus: Prometheus, end: float) -> bool:
    """Every bundle rule is loaded and evaluates without error on the demo's data,
    and the Watchdog fires."""
    while True:
        groups, rules, unknown, errors, not_due = await asyncio.to_thread(rule_health, prometheus)
        watchdog = await asyncio.to_thread(query, prometheus, 'ALERTS{alertname="Watchdog"}')
        if (not unknown and watchdog) or time.monotonic() > end:
            break
        await asyncio.sleep(1)
    alerts = await asyncio.to_thread(query, prometheus, "ALERTS")
    states = sorted(f"{a['metric']['alertname']}({a['metric']['alertstate']})" for a in alerts)
    print(
        f"  rules: {groups} groups, {rules} rules,"
        f" {len(errors)} failing, {len(unknown)} not evaluated"
        + (f" ({not_due} in groups whose interval has not passed yet)" if not_due else "")
    )
    print(f"  alerts: {', '.join(states) or 'none'}")
    for error in errors:
        print(f"  rule error: {error}")
    return bool(groups) and not errors and not unknown and bool(watchdog)


async def _verify_sinks(sinks: Sinks, end: float) -> bool:
    """The Watchdog arrived at the dead-man's switch; the sinks refused nothing."""

    def ping(n: Notification) -> bool:
        return n.sink == "heartbeat" and "Watchdog" in n.alertnames

    with contextlib.suppress(TimeoutError):
        await sinks.wait_for(ping, max(0.0, end - time.monotonic()))
    pings = len(sinks.matching(ping))
    refused = sinks.rejections
    print(
        f"  sinks: {len(sinks.notifications)} notifications, {pings} Watchdog pings at the"
        f" dead-man's switch, {len(refused)} refused"
    )
    for r in refused:
        print(f"  refused by {r.sink} ({r.path}): {r.reason}")
    return pings > 0 and not refused


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
