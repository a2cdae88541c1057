"""The demo's exporter configuration: one target per service the demo starts."""

from __future__ import annotations

from typing import Any

import yaml

from .fix import FixAcceptor
from .pglite import TimescaleLite
from .redis_ha import RedisCluster, SentinelGroup
from .redis_server import Redis
from .sim_eventbus import EventBusSim
from .sim_redis import HEARTBEATS, STREAM
from .sim_timescale import exporter_config as timescale_target

PG_PASSWORD_ENV = "TRADEOPS_DEMO_PG_PASSWORD"
TSDB_DATABASE = "tsdb"
"""The hypertable target's database: compose creates it on its TimescaleDB; PGlite
serves its one database whatever a client names."""


def redis_target(redis: Redis) -> dict[str, Any]:
    """The Redis target: canary, the platform's heartbeats, the order stream."""
    return {
        "name": "cache",
        "address": redis.address,
        "canary": {"ttl": "60s"},
        "heartbeats": [{"name": h, "key": f"heartbeat:{h}"} for h in HEARTBEATS],
        "streams": [{"name": "orders", "key": STREAM}],
    }


def fix_targets(venue: FixAcceptor) -> tuple[dict[str, Any], dict[str, Any]]:
    """The active monitoring session and the passive reader of the venue's files."""
    active = {
        "name": "venue",
        "address": venue.address,
        "sender_comp_id": "MONITOR",
        "target_comp_id": venue.sender,
    }
    passive = {
        "name": "venue-sim",
        "store_path": str(venue.store_dir),
        "log_path": str(venue.log_dir),
        "sender_comp_id": venue.sender,
        "target_comp_id": "SIM",
    }
    return active, passive


def sentinel_targets(group: SentinelGroup) -> list[dict[str, Any]]:
    """The master the Sentinels watch (followed through failovers, with a canary
    write) and its replica (the replication link and lag)."""
    return [
        {
            "name": "sessions",
            "sentinels": group.addresses,
            "master": group.master,
            "canary": {"ttl": "60s"},
        },
        {"name": "sessions-replica", "address": group.replica.address},
    ]


def cluster_target(cluster: RedisCluster) -> dict[str, Any]:
    """The Redis Cluster, through its nodes as seeds: its state, slots and nodes."""
    return {"name": "trades", "cluster": cluster.addresses}


def hypertable_target(lite: TimescaleLite) -> dict[str, Any]:
    """The hypertable on the demo's TimescaleDB (PGlite): unnamed statements and a
    connection per run, as a server that serves one client at a time through one
    shared backend needs (docs/timescale.md). PGlite accepts any password; the
    target sends the PostgreSQL one, as compose's (one server for both) does."""
    target = timescale_target(lite.address, TSDB_DATABASE, PG_PASSWORD_ENV, sla="30s", name="tsdb")
    return {**target, "statement_cache": False, "keep_connection": False}


def hypertable_dsn(lite: TimescaleLite) -> str:
    """The hypertable simulator's libpq URL (PGlite's password is no secret)."""
    return f"postgresql://{lite.user}:{lite.password}@{lite.address}/{TSDB_DATABASE}"


def eventbus_target(bus: EventBusSim, redis: Redis) -> dict[str, Any]:
    """The runtime stand-in's health endpoint, with a canary on a Redis stream."""
    return {"name": "runtime", "url": bus.url, "canary": {"redis": {"address": redis.address}}}


def exporter_config(targets: dict[str, list[dict[str, Any]]]) -> str:
    """The demo's exporter configuration."""
    config: dict[str, Any] = {"global": {"interval": "5s", "timeout": "3s"}, **targets}
    config["modules"] = {
        "redis": {"kind": "redis", "allowed_targets": [r"127\.0\.0\.1:\d+"]},
    }
    return yaml.safe_dump(config, sort_keys=False)
