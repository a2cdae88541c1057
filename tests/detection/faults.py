"""The faults of the detection tests: how each is injected into the chain and
healed, the alert it must raise, the labels that say where, and how long its
condition takes to hold once the fault is in (a heartbeat goes stale only after
its maximum gap, a Kafka group is stopped only when its status window is full).

Bounds are computed from the rule's own ``for:`` (as built for the chain's speed),
the scrape, evaluation and probe intervals, the probe deadline and the group wait
of the routes the alert takes; nothing here restates a timing of the bundle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from stack.chain import HEARTBEAT, Chain, Speed

Action = Callable[[Chain], Awaitable[None]]


@dataclass(frozen=True)
class Fault:
    """One fault and what it must page."""

    name: str
    alert: str
    labels: Mapping[str, str]
    """Labels the notification names (``target``, ``session``, ``group``), or text it
    must mention (``instance``; ``@name`` is the address of the chain's ``name``)."""
    inject: Action
    heal: Action
    delay: Callable[[Speed], float] = field(default=lambda s: 0.0)
    """Seconds from the injection until the alert's condition holds."""
    silent: tuple[str, ...] = ()
    """Alert-name prefixes that must reach nobody about these labels meanwhile
    (inhibited or withdrawn)."""
    phase: int = 1
    """Faults of one phase run at the same time; phases run in order."""


async def _thread(fn: Callable[[], object]) -> None:
    await asyncio.to_thread(fn)


async def _post(url: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(url) as resp:
        resp.raise_for_status()


def _bus(chain: Chain, action: str) -> str:
    return chain.bus.url.removesuffix(chain.bus.path) + "/" + action


async def _stop_batch(chain: Chain) -> None:
    await chain.kafka.stop_group("chain-batch")


async def _start_batch(chain: Chain) -> None:
    chain.kafka.start_group("chain-batch", assigned=True)
    await chain.kafka.committing("chain-batch")


async def _stop_member(chain: Chain) -> None:
    await chain.kafka.stop_group("chain-audit")


async def _start_member(chain: Chain) -> None:
    chain.kafka.start_group("chain-audit")
    await chain.kafka.committing("chain-audit")  # healed once it has rejoined


async def _stall_heartbeat(chain: Chain) -> None:
    chain.redis_traffic.stall(HEARTBEAT)


async def _unstall_heartbeat(chain: Chain) -> None:
    chain.redis_traffic.unstall(HEARTBEAT)


async def _pause_ticks(chain: Chain) -> None:
    chain.ticks.pause()


async def _resume_ticks(chain: Chain) -> None:
    chain.ticks.resume()


async def _stale_backups(chain: Chain) -> None:
    chain.backups_paused = True


async def _fresh_backups(chain: Chain) -> None:
    await asyncio.to_thread(chain.backup_now)
    chain.backups_paused = False


async def _recover_bus(chain: Chain) -> None:
    await _post(_bus(chain, "recover"))
    # healed when the runtime says so: its status counts the last minute's drops
    for _ in range(240):
        if chain.bus.status()[0] == "ok":
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("the event bus still reports a problem two minutes after recover")


async def _break_config(chain: Chain) -> None:
    chain.write_config_b(broken=True)
    chain.reload(chain.exporter_b)


async def _mend_config(chain: Chain) -> None:
    chain.write_config_b()
    chain.reload(chain.exporter_b)


FAULTS: tuple[Fault, ...] = (
    Fault(
        "Redis stopped",
        "RedisDown",
        {"target": "redis-stop"},
        lambda c: _thread(c.redis_stop.stop),
        lambda c: _thread(c.redis_stop.start),
    ),
    Fault(
        "Redis hung (SIGSTOP)",
        "RedisDown",
        {"target": "redis-hang"},
        lambda c: _thread(c.redis_hang.pause),
        lambda c: _thread(c.redis_hang.resume),
    ),
    Fault(
        "PostgreSQL stopped",
        "TimescaleDown",
        {"target": "pg-stop"},
        lambda c: _thread(c.postgres_stop.stop),
        lambda c: _thread(c.postgres_stop.start),
    ),
    Fault(
        "Ingest stopped (tick writer paused)",
        "TimescaleTableStale",
        {"target": "marketdata"},
        _pause_ticks,
        _resume_ticks,
        delay=lambda s: s.freshness_sla,
    ),
    # A consumer that assigns itself partitions leaves no member behind: stopped.
    Fault(
        "Kafka consumer group stopped",
        "KafkaConsumerGroupStopped",
        {"target": "marketdata", "group": "chain-batch"},
        _stop_batch,
        _start_batch,
        delay=lambda s: (s.status_window + 1) * s.interval,
    ),
    # The broker keeps the member of a consumer that stops consuming: stalled.
    Fault(
        "Kafka consumer stopped consuming (still a member)",
        "KafkaConsumerGroupStalled",
        {"target": "marketdata", "group": "chain-audit"},
        _stop_member,
        _start_member,
        delay=lambda s: (s.status_window + 1) * s.interval,
    ),
    Fault(
        "Kafka broker stopped",
        "KafkaClusterDown",
        {"target": "kafka-down"},
        lambda c: _thread(c.tansu_down.stop),
        lambda c: _thread(c.tansu_down.start),
        silent=("KafkaConsumer", "KafkaPartitions", "KafkaBroker"),
    ),
    Fault(
        "FIX acceptor hung (SIGSTOP)",
        "FixMonitoringSessionFailing",
        {"session": "venue-hang"},
        lambda c: _thread(c.venue_hang.pause),
        lambda c: _thread(c.venue_hang.resume),
    ),
    Fault(
        "FIX acceptor killed",
        "FixMonitoringSessionFailing",
        {"session": "venue-kill"},
        lambda c: _thread(c.venue_kill.kill),
        lambda c: _thread(c.venue_kill.start),
    ),
    Fault(
        "Heartbeat key no longer written",
        "RedisHeartbeatStale",
        {"target": "cache", "heartbeat": HEARTBEAT},
        _stall_heartbeat,
        _unstall_heartbeat,
        delay=lambda s: s.heartbeat_gap,
    ),
    Fault(
        "Backups gone stale",
        "BackupRpoFarOverObjective",
        {"target": "dumps"},
        _stale_backups,
        _fresh_backups,
        delay=lambda s: 1.5 * s.rpo_objective,
    ),
    Fault(
        "Restore drill failed",
        "BackupRestoreDrillFailed",
        {"target": "restore-drill"},
        lambda c: _thread(lambda: c.drill(ok=False)),
        lambda c: _thread(lambda: c.drill(ok=True)),
    ),
    Fault(
        "Event-bus backlog and drops (degraded)",
        "EventBusEventsDropped",
        {"target": "runtime"},
        lambda c: _post(_bus(c, "degrade")),
        _recover_bus,
    ),
    Fault(
        "Target misconfigured after a reload",
        "ConfigReloadFailed",
        {"instance": "@exporter_b"},
        _break_config,
        _mend_config,
    ),
    # An absent exporter mutes every alert that carries no instance (the Kafka
    # alerts among them): on its own, after the others.
    Fault(
        "Exporter stopped",
        "ExporterAbsent",
        {"instance": "@exporter_b"},
        lambda c: _thread(c.exporter_b.stop),
        lambda c: _thread(c.exporter_b.start),
        phase=2,
    ),
)
