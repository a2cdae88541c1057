"""The series of a server's INFO against what the real server says: memory, clients,
keyspace counters, persistence and replication."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from pathlib import Path

import pytest
import redis

from exporter.kinds.redis import info as redis_info
from exporter.probe import ProbeResult, Sample
from stack import Redis

from ...helpers import Running, Series, eventually, scrape_until, value
from .support import Factory, admin_client, later_run, server_yaml, until_info


async def test_replication_is_seen_from_both_ends(
    redis_server: Redis, tmp_path: Path, exporter_factory: Factory
) -> None:
    replica = Redis(tmp_path / "replica").start()
    try:
        with socket.create_connection(("127.0.0.1", replica.port)) as s:
            s.sendall(b"REPLICAOF 127.0.0.1 %d\r\n" % redis_server.port)
            assert s.recv(100).startswith(b"+OK")
        run: Running = await exporter_factory(f"""
redis:
  - {{name: primary, address: "{redis_server.address}", interval: 1s, timeout: 500ms}}
  - {{name: replica, address: "{replica.address}", interval: 1s, timeout: 500ms}}
""")

        def linked(m: Series) -> bool:
            return (
                value(m, "tradeops_redis_replication_link_up", target="replica") == 1
                and value(m, "tradeops_redis_connected_replicas", target="primary") == 1
            )

        m = await scrape_until(run, linked, timeout=15)
        assert value(m, "tradeops_redis_role_primary", target="primary") == 1
        assert value(m, "tradeops_redis_role_primary", target="replica") == 0
        assert value(m, "tradeops_redis_replication_lag_bytes", target="primary") is not None
        assert value(m, "tradeops_redis_replication_link_up", target="primary") is None
        replica.stop()

        async def replica_gone() -> bool:
            m = await run.scrape()
            return value(m, "tradeops_redis_connected_replicas", target="primary") == 0

        await eventually(replica_gone, timeout=15)
    finally:
        replica.stop()


def _evict_for_real(admin: redis.Redis) -> int:
    """A limit just above the memory in use, then 2 MB of writes: the keys evicted."""
    admin.config_set("maxmemory-policy", "allkeys-random")
    admin.config_set("maxmemory", admin.info("memory")["used_memory"] + 256 * 1024)
    for batch in range(20):
        pipe = admin.pipeline(transaction=False)
        for i in range(100):
            pipe.set(f"filler:{batch}:{i}", "x" * 1024)
        pipe.execute()
    evicted: int = admin.info("stats")["evicted_keys"]
    assert evicted > 0
    return evicted


async def test_memory_clients_and_keyspace_counters_match_info(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    t = {"target": "cache"}
    admin = admin_client(redis_server)
    blocker = socket.create_connection(("127.0.0.1", redis_server.port))
    try:
        evicted = _evict_for_real(admin)
        admin.config_set("maxmemory", 64 * 1024 * 1024)  # far above use: evictions stop
        admin.mset({"k:1": "a", "k:2": "b"})
        run: Running = await exporter_factory(
            server_yaml(redis_server, interval="300ms", timeout="250ms")
        )
        m = await later_run(run)
        info = admin.info()
        assert value(m, "tradeops_redis_memory_max_bytes", **t) == 64 * 1024 * 1024
        assert admin.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
        assert value(m, "tradeops_redis_evicted_keys_total", **t) == evicted
        assert info["evicted_keys"] == evicted
        frag = value(m, "tradeops_redis_memory_fragmentation_ratio", **t)
        assert frag is not None and frag > 0
        assert frag == pytest.approx(info["mem_fragmentation_ratio"], rel=0.5)
        # nothing looked a key up since that run: the server's counters are the exporter's
        hits0 = value(m, "tradeops_redis_keyspace_hits_total", **t)
        misses0 = value(m, "tradeops_redis_keyspace_misses_total", **t)
        assert (hits0, misses0) == (info["keyspace_hits"], info["keyspace_misses"])
        assert hits0 is not None and misses0 is not None
        assert value(m, "tradeops_redis_blocked_clients", **t) == 0

        blocker.sendall(b"BLPOP q:empty 0\r\n")
        for key in ("k:1", "k:2", "k:1", "k:2", "k:1"):
            assert admin.get(key) is not None
        for key in ("none:1", "none:2", "none:3"):
            assert admin.get(key) is None
        await until_info(admin, lambda i: i["blocked_clients"] == 1)
        m = await later_run(run)
        info = admin.info()
        hits = value(m, "tradeops_redis_keyspace_hits_total", **t)
        misses = value(m, "tradeops_redis_keyspace_misses_total", **t)
        assert (hits, misses) == (info["keyspace_hits"], info["keyspace_misses"])
        assert hits is not None and misses is not None
        assert (hits - hits0, misses - misses0) == (5, 3)
        assert value(m, "tradeops_redis_blocked_clients", **t) == 1
        # the admin, the blocked client and the exporter's one connection
        connected = value(m, "tradeops_redis_connected_clients", **t)
        assert connected == info["connected_clients"] == len(admin.client_list())
        assert connected is not None

        blocker.close()
        await until_info(admin, lambda i: i["blocked_clients"] == 0)
        m = await later_run(run)
        assert value(m, "tradeops_redis_blocked_clients", **t) == 0
        assert value(m, "tradeops_redis_connected_clients", **t) == connected - 1
        assert admin.info("clients")["connected_clients"] == connected - 1
    finally:
        blocker.close()
        admin.close()


class _RedisWithProtectedConfigs(Redis):
    """redis-server that lets CONFIG SET change ``dir``: pointed at /proc, where no
    file can be created (not even by root), its saves and AOF rewrites really fail."""

    def command(self) -> list[str]:
        return [*super().command(), "--enable-protected-configs", "yes"]


async def test_persistence_series_follow_saves_and_their_failures(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    t = {"target": "cache"}
    server = _RedisWithProtectedConfigs(tmp_path).start()
    admin = admin_client(server)
    try:
        run: Running = await exporter_factory(
            server_yaml(server, interval="300ms", timeout="250ms")
        )
        m = await later_run(run)
        started = admin.lastsave().timestamp()  # no save yet: the server's start
        assert value(m, "tradeops_redis_rdb_last_save_timestamp_seconds", **t) == started
        assert value(m, "tradeops_redis_rdb_last_bgsave_ok", **t) == 1
        assert value(m, "tradeops_redis_aof_enabled", **t) == 0
        assert value(m, "tradeops_redis_aof_last_write_ok", **t) is None
        assert value(m, "tradeops_redis_aof_last_rewrite_ok", **t) is None

        await asyncio.sleep(max(0.0, started + 1.1 - time.time()))  # LASTSAVE is in seconds
        assert admin.save()
        saved = admin.lastsave().timestamp()
        assert saved > started
        m = await later_run(run)
        assert value(m, "tradeops_redis_rdb_last_save_timestamp_seconds", **t) == saved

        admin.config_set("dir", "/proc")
        admin.bgsave()
        await until_info(admin, lambda i: i["rdb_bgsave_in_progress"] == 0)
        assert admin.info("persistence")["rdb_last_bgsave_status"] == "err"
        m = await later_run(run)
        assert value(m, "tradeops_redis_rdb_last_bgsave_ok", **t) == 0
        assert value(m, "tradeops_redis_rdb_last_save_timestamp_seconds", **t) == saved

        admin.config_set("dir", str(server.dir))
        admin.config_set("appendonly", "yes")
        await until_info(
            admin, lambda i: i["aof_rewrite_in_progress"] == 0 and i["aof_rewrite_scheduled"] == 0
        )
        info = admin.info("persistence")
        assert (info["aof_enabled"], info["aof_last_write_status"]) == (1, "ok")
        assert info["aof_last_bgrewrite_status"] == "ok"
        m = await later_run(run)
        assert value(m, "tradeops_redis_aof_enabled", **t) == 1
        assert value(m, "tradeops_redis_aof_last_write_ok", **t) == 1
        assert value(m, "tradeops_redis_aof_last_rewrite_ok", **t) == 1

        admin.config_set("dir", "/proc")
        with pytest.raises(redis.exceptions.ResponseError):
            admin.bgrewriteaof()
        info = admin.info("persistence")
        assert (info["aof_last_bgrewrite_status"], info["aof_last_write_status"]) == ("err", "ok")
        m = await later_run(run)
        assert value(m, "tradeops_redis_aof_last_rewrite_ok", **t) == 0
        assert value(m, "tradeops_redis_aof_last_write_ok", **t) == 1
        assert value(m, "tradeops_redis_aof_enabled", **t) == 1
    finally:
        with contextlib.suppress(redis.exceptions.RedisError):
            admin.config_set("dir", str(server.dir))
        admin.close()
        server.stop()


def _series(r: ProbeResult) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.family.name, s.labels): s.value for s in r.samples if isinstance(s, Sample)}


def test_what_info_does_not_report_is_absent_not_zero() -> None:
    """AOF off: no AOF status; a flag is not a number; only databases that hold keys."""
    info = {
        "redis_version": "7.0.15",
        "role": "master",
        "uptime_in_seconds": 100,
        "used_memory": True,
        "aof_enabled": 0,
        "aof_last_write_status": "ok",
        "rdb_last_bgsave_status": "err",
        "db3": {"keys": 5, "expires": 0},
    }
    r = ProbeResult()
    redis_info.server_series(r, "c", info, now=1000.4)
    assert _series(r) == {
        ("tradeops_redis_info", ("c", "7.0.15", "master", "")): 1,
        ("tradeops_redis_start_time_seconds", ("c",)): 900,
        ("tradeops_redis_aof_enabled", ("c",)): 0,
        ("tradeops_redis_rdb_last_bgsave_ok", ("c",)): 0,
        ("tradeops_redis_db_keys", ("c", "3")): 5,
        ("tradeops_redis_db_keys_expiring", ("c", "3")): 0,
    }


@pytest.mark.parametrize(
    ("offsets", "lag"),
    [((990, 400), 600), ((1010,), 0), ((), None)],
    ids=["furthest-behind", "ahead-is-zero", "no-offset-known"],
)
def test_a_primarys_lag_is_its_furthest_replicas(offsets: tuple[int, ...], lag: int | None) -> None:
    info: dict[str, object] = {"role": "master", "connected_slaves": 2, "master_repl_offset": 1000}
    info |= {f"slave{i}": {"offset": o} for i, o in enumerate(offsets)}
    r = ProbeResult()
    redis_info.replication_series(r, "c", info)
    got = _series(r)
    assert got[("tradeops_redis_role_primary", ("c",))] == 1
    assert got[("tradeops_redis_connected_replicas", ("c",))] == 2
    assert got.get(("tradeops_redis_replication_lag_bytes", ("c",))) == lag


def test_a_replica_reports_its_link_and_no_unknown_last_io() -> None:
    info = {
        "role": "slave",
        "master_link_status": "down",
        "master_last_io_seconds_ago": -1,
        "master_sync_in_progress": 1,
    }
    r = ProbeResult()
    redis_info.replication_series(r, "c", info)
    assert _series(r) == {
        ("tradeops_redis_role_primary", ("c",)): 0,
        ("tradeops_redis_replication_link_up", ("c",)): 0,
        ("tradeops_redis_replication_sync_in_progress", ("c",)): 1,
    }
