"""The series of one server's ``INFO``: identity, clients, memory, persistence,
keyspace and replication."""

from __future__ import annotations

from typing import Any

from ...catalogue.base import Family
from ...probe import ProbeResult
from . import metrics as M

DATABASES = 16
"""Logical databases whose ``db<N>`` keyspace line is read."""

_PLAIN: dict[Family, str] = {
    M.CLIENTS: "connected_clients",
    M.BLOCKED_CLIENTS: "blocked_clients",
    M.MAX_CLIENTS: "maxclients",
    M.REJECTED_CONNECTIONS: "rejected_connections",
    M.CONNECTIONS_RECEIVED: "total_connections_received",
    M.COMMANDS: "total_commands_processed",
    M.MEMORY_USED: "used_memory",
    M.MEMORY_RSS: "used_memory_rss",
    M.MEMORY_MAX: "maxmemory",
    M.FRAGMENTATION: "mem_fragmentation_ratio",
    M.EVICTED: "evicted_keys",
    M.EXPIRED: "expired_keys",
    M.HITS: "keyspace_hits",
    M.MISSES: "keyspace_misses",
    M.RDB_LAST_SAVE: "rdb_last_save_time",
    M.RDB_CHANGES: "rdb_changes_since_last_save",
    M.RDB_IN_PROGRESS: "rdb_bgsave_in_progress",
    M.AOF_ENABLED: "aof_enabled",
    M.REPLICATION_OFFSET: "master_repl_offset",
}
"""Families whose value is an ``INFO`` field as it is."""


def _num(info: dict[str, Any], key: str) -> float | None:
    value = info.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ok(info: dict[str, Any], key: str) -> bool | None:
    value = info.get(key)
    return None if value is None else value == "ok"


def server_series(r: ProbeResult, name: str, info: dict[str, Any], now: float) -> None:
    """Everything ``INFO`` says about the server itself (``now``: Unix time)."""
    _identity(r, name, info, now)
    for fam, key in _PLAIN.items():
        r.add(fam, _num(info, key), name)
    _persistence(r, name, info)
    _keyspace(r, name, info)


def _identity(r: ProbeResult, name: str, info: dict[str, Any], now: float) -> None:
    version = str(info.get("redis_version", ""))
    r.add(M.INFO, 1, name, version, str(info.get("role", "")), str(info.get("redis_mode", "")))
    uptime = _num(info, "uptime_in_seconds")
    r.add(M.START_TIME, None if uptime is None else round(now - uptime), name)


def _persistence(r: ProbeResult, name: str, info: dict[str, Any]) -> None:
    """The last RDB save's and, with AOF on, the AOF's status."""
    r.add(M.RDB_LAST_OK, _ok(info, "rdb_last_bgsave_status"), name)
    if info.get("aof_enabled") == 1:
        r.add(M.AOF_LAST_WRITE_OK, _ok(info, "aof_last_write_status"), name)
        r.add(M.AOF_LAST_REWRITE_OK, _ok(info, "aof_last_bgrewrite_status"), name)


def _keyspace(r: ProbeResult, name: str, info: dict[str, Any]) -> None:
    """Keys and keys with a TTL, per database that holds any."""
    for db in range(DATABASES):
        stats = info.get(f"db{db}")
        if isinstance(stats, dict):
            r.add(M.DB_KEYS, stats.get("keys"), name, str(db))
            r.add(M.DB_EXPIRING, stats.get("expires"), name, str(db))


def replication_series(r: ProbeResult, name: str, info: dict[str, Any]) -> None:
    """The server's role and, on a primary, its replicas; on a replica, its link."""
    role = info.get("role")
    r.add(M.ROLE_PRIMARY, role == "master", name)
    if role == "master":
        _primary_series(r, name, info)
    elif role == "slave":
        r.add(M.REPLICATION_LINK_UP, info.get("master_link_status") == "up", name)
        last_io = _num(info, "master_last_io_seconds_ago")
        r.add(M.REPLICATION_LAST_IO, None if last_io is None or last_io < 0 else last_io, name)
        r.add(M.SYNC_IN_PROGRESS, _num(info, "master_sync_in_progress"), name)


def _primary_series(r: ProbeResult, name: str, info: dict[str, Any]) -> None:
    """Replicas attached, and how far the furthest is behind (in bytes)."""
    replicas = int(_num(info, "connected_slaves") or 0)
    r.add(M.CONNECTED_REPLICAS, replicas, name)
    offsets = [
        float(s["offset"])
        for i in range(replicas)
        if isinstance(s := info.get(f"slave{i}"), dict) and "offset" in s
    ]
    master = _num(info, "master_repl_offset")
    if offsets and master is not None:
        r.add(M.REPLICATION_LAG, max(0.0, master - min(offsets)), name)
