"""The real chain the detection tests inject faults into.

Every service of the stack (Redis, PostgreSQL, the Kafka-protocol broker, the
FIX acceptor, the event-bus stand-in, the backup files), the traffic that keeps
them busy, two exporters probing them, Prometheus evaluating a build of the
bundle's rules and Alertmanager with the shipped routes delivering to the local
Slack, PagerDuty and dead-man's-switch stand-ins. Each fault has a service of its
own (a second Redis to stop, a third to hang, a second broker, a second
PostgreSQL, three acceptors ...), so the faults run at the same time without
touching each other's alerts.

A :class:`Speed` says how fast everything runs: ``FAST`` builds the bundle with a
small ``timeScale`` and one-second intervals (the default suite); ``SHIPPED``
keeps the shipped ``for:`` durations and realistic intervals (``make test-long``).
The rules and the Alertmanager routes are the shipped ones in both: the rules come
from the one bundle config with ``timeScale`` and the intervals overridden, the
Alertmanager timings are multiplied by the same scale.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bundle import build as bundle_build
from bundle.routes import prom_duration

from . import sim_fix
from .alerting import Wired, wire_config
from .backups import dump_backup, restore_drill, write_drill_record
from .demo import cancel_task, stop_fix_traffic
from .exporter import Exporter
from .fix import FixAcceptor
from .postgres import Postgres
from .prometheus import Alertmanager, Prometheus
from .redis_server import Redis
from .services import Service
from .sim_eventbus import EventBusSim
from .sim_kafka import KafkaSimulator
from .sim_redis import RedisTraffic
from .sim_timescale import TickSimulator
from .sim_timescale import exporter_config as timescale_target
from .sinks import Sinks
from .tansu import Tansu

ServiceT = TypeVar("ServiceT", bound=Service)

PG_PASSWORD_ENV = "TRADEOPS_CHAIN_PG_PASSWORD"
CLOSED = "closed"
"""A calendar with no session today or tomorrow (both are holidays)."""
HEARTBEAT = "pricing"
"""The heartbeat key the heartbeat fault stops writing (not one of the SLA's)."""


@dataclass(frozen=True)
class Speed:
    """How fast the chain runs, and the per-target thresholds its config sets."""

    name: str
    time_scale: float
    """The bundle's ``timeScale`` and the factor on Alertmanager's timings."""
    interval: float
    """Scrape, rule evaluation and probe interval, seconds."""
    timeout: float
    """Probe deadline, seconds."""
    heartbeat_gap: float
    freshness_sla: float
    rpo_objective: float
    backup_every: float
    """A dump is written this often while backups are healthy."""
    status_window: int
    """Observations in a Kafka group's status window."""
    slack: float
    """What delivery, process start-up and a loaded machine may add to a bound."""

    @property
    def override(self) -> str:
        """The bundle override (``{_config+:: ...}``) that builds the rules for it."""
        interval = _seconds(self.interval)
        return (
            f"{{_config+:: {{timeScale: {self.time_scale:g}, scrapeInterval: '{interval}',"
            f" evaluationInterval: '{interval}'}}}}"
        )


FAST = Speed(
    "fast",
    time_scale=0.05,
    interval=1.0,
    timeout=0.8,
    heartbeat_gap=5.0,
    freshness_sla=5.0,
    rpo_objective=8.0,
    backup_every=2.0,
    status_window=3,
    slack=8.0,
)
SHIPPED = Speed(
    "shipped",
    time_scale=1.0,
    interval=15.0,
    timeout=10.0,
    heartbeat_gap=60.0,
    freshness_sla=120.0,
    rpo_objective=120.0,
    backup_every=30.0,
    status_window=10,
    slack=20.0,
)
SPEEDS = {s.name: s for s in (FAST, SHIPPED)}


def _seconds(value: float) -> str:
    """A duration Prometheus and Alertmanager accept: whole seconds or milliseconds."""
    return f"{value:g}s" if float(value).is_integer() else f"{round(value * 1000)}ms"


def scale_timings(config: dict[str, Any], factor: float, floor: float = 1.0) -> None:
    """Multiply every group_wait, group_interval and repeat_interval of the route tree
    by ``factor`` (never under ``floor`` seconds, 0 stays 0); 1 changes nothing."""
    if factor == 1:
        return

    def walk(node: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in node:
                seconds = prom_duration(node[key])
                node[key] = _seconds(0 if seconds == 0 else max(floor, seconds * factor))
        for child in node.get("routes") or []:
            walk(child)

    route = config["route"]
    for key, default in (("group_wait", 30.0), ("group_interval", 300.0)):
        route.setdefault(key, _seconds(default))
    route.setdefault("repeat_interval", "4h")
    walk(route)


def closed_calendar(today: dt.date | None = None) -> dict[str, Any]:
    """A calendar whose sessions would run all day, but today and tomorrow (UTC)
    are holidays: closed for the whole test."""
    day = today or dt.datetime.now(dt.UTC).date()
    return {
        "name": CLOSED,
        "timezone": "UTC",
        "sessions": [
            {
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "open": "00:00",
                "close": "23:59",
            }
        ],
        "holidays": [day.isoformat(), (day + dt.timedelta(days=1)).isoformat()],
        "warmup": "0s",
    }


class Chain:
    """Starts, holds and stops the chain; the handles the faults act on."""

    def __init__(self, root: Path, speed: Speed) -> None:
        self.root = root
        self.speed = speed
        self.services: list[Service] = []
        self.stoppers: list[Callable[[], Awaitable[None]]] = []
        self.sinks = Sinks()
        self.started = 0.0
        self.closed_market = False

    # set-up

    def _start(self, service: ServiceT) -> ServiceT:
        service.start()
        self.services.append(service)
        return service

    def _in(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def start(self) -> None:
        """Services, traffic, exporters, Alertmanager, then Prometheus."""
        self.started = time.monotonic()
        await asyncio.to_thread(self._start_services)
        await self._start_traffic()
        self._prepare_backups()
        self.exporter_a = self._start(Exporter(self._in("exporter-a"), self.write_config_a()))
        self.exporter_b = self._start(Exporter(self._in("exporter-b"), self.write_config_b()))
        await self.sinks.start()
        self.stoppers.append(self.sinks.stop)
        self.wired = wire_config(
            self.sinks,
            self.root / "alertmanager-secrets",
            adjust=lambda c: scale_timings(c, self.speed.time_scale),
        )
        self.alertmanager = self._start(
            Alertmanager(self._in("alertmanager"), config_text=self.wired.text)
        )
        rules_dir = self.root / "rules"
        bundle_build.write(rules_dir, self.speed.override)
        self.prometheus = self._start(
            Prometheus(
                self._in("prometheus"),
                scrape_targets=[self.exporter_a.address, self.exporter_b.address],
                rule_files=sorted(str(p) for p in rules_dir.glob("*.yml")),
                alertmanager=self.alertmanager.address,
                scrape_interval=_seconds(self.speed.interval),
                resend_delay=_seconds(max(5.0, self.speed.interval)),
            )
        )

    def _start_services(self) -> None:
        self.redis = self._start(Redis(self._in("redis-cache")))
        self.redis_stop = self._start(Redis(self._in("redis-stop")))
        self.redis_hang = self._start(Redis(self._in("redis-hang")))
        self.postgres = self._start(Postgres(self._in("pg-marketdata")))
        self.postgres_stop = self._start(Postgres(self._in("pg-stop")))
        self.tansu = self._start(Tansu(self._in("kafka-main")))
        self.tansu_down = self._start(Tansu(self._in("kafka-down")))
        self.venue = self._start(FixAcceptor(self._in("venue")))
        self.venue_hang = self._start(FixAcceptor(self._in("venue-hang")))
        self.venue_kill = self._start(FixAcceptor(self._in("venue-kill")))

    async def _start_traffic(self) -> None:
        self.redis_traffic = RedisTraffic(
            self.redis.address, heartbeats=("ingestion", "execution", "risk", HEARTBEAT)
        )
        self.redis_traffic.start()
        self.stoppers.append(self.redis_traffic.stop)
        self.ticks = TickSimulator(self.postgres.dsn(), interval=0.5)
        await self.ticks.start()
        self.stoppers.append(self.ticks.stop)
        self.ticks_stop = TickSimulator(self.postgres_stop.dsn(), interval=0.5)
        await self.ticks_stop.start()
        self.stoppers.append(self.ticks_stop.stop)
        self.kafka = KafkaSimulator(self.tansu.bootstrap, prefix="chain", lagging=False)
        await self.kafka.start()
        self.stoppers.append(self.kafka.stop)
        self.kafka_down = KafkaSimulator(
            self.tansu_down.bootstrap, prefix="down", lagging=False, batch=False
        )
        await self.kafka_down.start()
        self.stoppers.append(self.kafka_down.stop)
        self.fix_stop = asyncio.Event()
        fix_task = asyncio.create_task(sim_fix.run(self.venue.address, stop=self.fix_stop))
        self.stoppers.append(lambda: stop_fix_traffic(self.fix_stop, fix_task))
        self.bus = await EventBusSim("127.0.0.1", error_every=0).start()
        self.stoppers.append(self.bus.stop)

    # backups: dumps of the marketdata database and restore-drill records

    def _prepare_backups(self) -> None:
        self.dumps = self._in("backups/dumps")
        self.drills = self._in("backups/drills")
        self.backups_paused = False
        newest = dump_backup(self.postgres, self.dumps)
        restore_drill(self.postgres, newest, self.drills / "latest.json")

        async def write_dumps() -> None:
            while True:
                await asyncio.sleep(self.speed.backup_every)
                if not self.backups_paused:
                    await asyncio.to_thread(self.backup_now)

        task = asyncio.create_task(write_dumps(), name="chain-backups")
        self.stoppers.append(lambda: cancel_task(task))

    def backup_now(self) -> Path:
        """One more dump (keeping the newest five)."""
        path = dump_backup(self.postgres, self.dumps)
        dumps = sorted(self.dumps.glob("*.dump"), key=lambda p: p.stat().st_mtime)
        for old in dumps[:-5]:
            old.with_name(old.name + ".manifest.json").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
        return path

    def drill(self, ok: bool) -> None:
        """A real restore drill of the newest dump, or the record of a failed one."""
        record = self.drills / "latest.json"
        if not ok:
            write_drill_record(record, False, duration=1.0, checksums=0, checksums_failed=0)
            return
        newest = max(self.dumps.glob("*.dump"), key=lambda p: p.stat().st_mtime)
        restore_drill(self.postgres, newest, record)

    # the exporters' configurations

    def config_a(self) -> dict[str, Any]:
        """Exporter A: every target of the stack (on the closed calendar while
        ``closed_market`` is set)."""
        s = self.speed
        targets = {
            "redis": self._redis_targets(),
            "timescale": self._timescale_targets(),
            "kafka": [
                {
                    "name": name,
                    "bootstrap_servers": broker.bootstrap,
                    "status_window": s.status_window,
                }
                for name, broker in (("marketdata", self.tansu), ("kafka-down", self.tansu_down))
            ],
            "fix": [
                self._fix_active("venue", self.venue),
                self._fix_active("venue-hang", self.venue_hang),
                self._fix_active("venue-kill", self.venue_kill),
            ],
            "fix_store": [
                {
                    "name": "venue-sim",
                    "store_path": str(self.venue.store_dir),
                    "log_path": str(self.venue.log_dir),
                    "sender_comp_id": self.venue.sender,
                    "target_comp_id": "SIM",
                }
            ],
            "eventbus": [
                {
                    "name": "runtime",
                    "url": self.bus.url,
                    "canary": {"redis": {"address": self.redis.address}},
                }
            ],
            "backups": self._backup_targets(),
        }
        if self.closed_market:
            for entries in targets.values():
                for target in entries:
                    target["calendar"] = CLOSED
        return {
            "global": {"interval": _seconds(s.interval), "timeout": _seconds(s.timeout)},
            "calendars": [closed_calendar()],
            **targets,
        }

    def _redis_targets(self) -> list[dict[str, Any]]:
        heartbeats = [
            {"name": h, "key": f"heartbeat:{h}", "max_gap": _seconds(self.speed.heartbeat_gap)}
            for h in ("ingestion", "execution", "risk", HEARTBEAT)
        ]
        cache = {"name": "cache", "address": self.redis.address, "canary": {"ttl": "60s"}}
        return [
            cache | {"heartbeats": heartbeats},
            {"name": "redis-stop", "address": self.redis_stop.address},
            {"name": "redis-hang", "address": self.redis_hang.address},
        ]

    def _timescale_targets(self) -> list[dict[str, Any]]:
        sla = _seconds(self.speed.freshness_sla)
        out = []
        for name, pg in (("marketdata", self.postgres), ("pg-stop", self.postgres_stop)):
            env = f"{PG_PASSWORD_ENV}_{name.upper().replace('-', '_')}"
            os.environ[env] = pg.password
            out.append(timescale_target(pg.address, "postgres", env, name=name, sla=sla))
        return out

    def _backup_targets(self) -> list[dict[str, Any]]:
        dumps = {"type": "directory", "path": str(self.dumps), "recovery_point": "start"}
        return [
            {"name": "dumps", "rpo_objective": _seconds(self.speed.rpo_objective), "source": dumps},
            {
                "name": "restore-drill",
                "source": {"type": "restore_drill", "path": str(self.drills)},
            },
        ]

    def _fix_active(self, name: str, venue: FixAcceptor) -> dict[str, Any]:
        return {
            "name": name,
            "address": venue.address,
            "sender_comp_id": "MONITOR",
            "target_comp_id": venue.sender,
        }

    def write_config_a(self) -> Path:
        """Write exporter A's configuration; its path."""
        path = self.root / "exporter-a.yml"
        path.write_text(yaml.safe_dump(self.config_a(), sort_keys=False))
        return path

    def config_b(self, broken: bool = False) -> str:
        """Exporter B (the one stopped and misconfigured): one Redis target; broken,
        a field misspelt as a person editing it might."""
        s = self.speed
        key = "adress" if broken else "address"
        return yaml.safe_dump(
            {
                "global": {"interval": _seconds(s.interval), "timeout": _seconds(s.timeout)},
                "redis": [{"name": "cache-b", key: self.redis.address}],
            },
            sort_keys=False,
        )

    def write_config_b(self, broken: bool = False) -> Path:
        """Write exporter B's configuration; its path."""
        path = self.root / "exporter-b.yml"
        path.write_text(self.config_b(broken))
        return path

    def redis_of(self, target: str) -> Redis | None:
        """The Redis server behind a Redis target of the chain."""
        return {
            "cache": self.redis,
            "cache-b": self.redis,
            "redis-stop": self.redis_stop,
            "redis-hang": self.redis_hang,
        }.get(target)

    @staticmethod
    def reload(exporter: Exporter) -> None:
        """SIGHUP: the exporter re-reads its configuration file."""
        assert exporter.proc is not None
        os.kill(exporter.proc.pid, signal.SIGHUP)

    # tear-down

    async def stop(self) -> None:
        """Stop the traffic and every service, newest first."""
        for stopper in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                await stopper()
        for service in reversed(self.services):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(service.stop)


__all__ = ["CLOSED", "FAST", "HEARTBEAT", "SHIPPED", "SPEEDS", "Chain", "Speed", "Wired"]
