"""Redis probe against a real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from exporter.budget import format_size
from exporter.kinds.redis import KIND
from exporter.kinds.redis.client import classify
from exporter.kinds.redis.config import RedisTarget
from exporter.kinds.redis.probe import RedisState, parse_heartbeat
from exporter.scheduler import run_probe
from stack import Redis

from ...helpers import (
    Running,
    Series,
    eventually,
    report,
    scrape_until,
    self_signed_cert,
    value,
    with_label,
)

Factory = Callable[..., Any]


def _config(server: Redis, extra: str = "", interval: str = "1s", timeout: str = "500ms") -> str:
    return f"""
redis:
  - name: cache
    address: {server.address}
    interval: {interval}
    timeout: {timeout}
{extra}
"""


def _up_of(m: Series) -> float | None:
    return value(m, "tradeops_up", kind="redis", target="cache")


async def _up(run: Running) -> float | None:
    return _up_of(await run.scrape())


async def test_healthy_server_reports_its_state(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    now = time.time()
    client = socket.create_connection(("127.0.0.1", redis_server.port))
    client.sendall(
        b"SET hb:ingest %d\r\nXADD s:orders * side buy\r\n"
        b"XGROUP CREATE s:orders risk 0\r\nHSET hb:risk ts %d\r\n" % (int(now), int(now * 1000))
    )
    client.recv(4096)
    client.close()
    with _admin(redis_server) as admin:
        admin.xgroup_createconsumer("s:orders", "risk", "pricer")
        consumers = admin.xinfo_groups("s:orders")[0]["consumers"]
    assert consumers == 1
    run: Running = await exporter_factory(
        _config(
            redis_server,
            """
    canary: {ttl: 30s}
    heartbeats:
      - {name: ingest, key: "hb:ingest"}
      - {name: risk, key: "hb:risk", field: ts}
      - {name: missing, key: "hb:none"}
    streams:
      - {name: orders, key: "s:orders"}
""",
        )
    )

    def two_runs(m: Series) -> bool:  # the canary key exists from the end of the first run
        return (value(m, "tradeops_probe_runs_total", kind="redis", target="cache") or 0) >= 2

    m = await scrape_until(run, two_runs)
    t = {"target": "cache"}
    assert value(m, "tradeops_redis_role_primary", **t) == 1
    assert (
        value(
            m,
            "tradeops_redis_info",
            **t,
            version=_server_version(redis_server),
            role="master",
            mode="standalone",
        )
        == 1
    )
    assert 0 < value(m, "tradeops_redis_ping_seconds", **t) < 0.5  # type: ignore[operator]
    assert value(m, "tradeops_redis_memory_used_bytes", **t) > 100_000  # type: ignore[operator]
    assert value(m, "tradeops_redis_max_clients", **t) == 10000
    assert value(m, "tradeops_redis_canary_success", **t) == 1
    assert value(m, "tradeops_redis_heartbeat_timestamp_seconds", **t, heartbeat="ingest") == int(
        now
    )
    assert value(
        m, "tradeops_redis_heartbeat_timestamp_seconds", **t, heartbeat="risk"
    ) == pytest.approx(int(now * 1000) / 1000)
    assert value(m, "tradeops_redis_heartbeat_present", **t, heartbeat="missing") == 0
    assert value(m, "tradeops_redis_heartbeat_timestamp_seconds", **t, heartbeat="missing") is None
    assert value(m, "tradeops_redis_stream_length", **t, stream="orders") == 1
    assert value(m, "tradeops_redis_stream_group_lag", **t, stream="orders", group="risk") == 1
    assert value(m, "tradeops_redis_stream_group_pending", **t, stream="orders", group="risk") == 0
    assert (
        value(m, "tradeops_redis_stream_group_consumers", **t, stream="orders", group="risk")
        == consumers
    )
    last_entry = value(
        m, "tradeops_redis_stream_last_entry_timestamp_seconds", **t, stream="orders"
    )
    assert last_entry is not None and abs(last_entry - now) < 5
    # db0 holds hb:ingest, s:orders, hb:risk and the canary key (which has a TTL)
    assert value(m, "tradeops_redis_db_keys", **t, db="0") == 4
    assert value(m, "tradeops_redis_db_keys_expiring", **t, db="0") == 1
    assert (
        value(m, "tradeops_probe_errors_total", kind="redis", target="cache", reason="timeout") == 0
    )


def _server_version(server: Redis) -> str:
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"INFO server\r\n")
        time.sleep(0.1)
        text = s.recv(65536).decode()
    return text.split("redis_version:")[1].split("\r\n")[0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"1795400000", 1795400000.0),
        (b"1795400000123", 1795400000.123),
        (b"1795400000.5", 1795400000.5),
        (b"soon", None),
        (b"-5", None),
        (None, None),
        (b"nan", None),
    ],
)
def test_parse_heartbeat(raw: bytes | None, expected: float | None) -> None:
    assert parse_heartbeat(raw) == (pytest.approx(expected) if expected else None)


async def test_stopped_server_withdraws_series_and_recovers(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(_config(redis_server))

    async def up_is(v: float) -> Callable[[], Any]:
        async def check() -> bool:
            return await _up(run) == v

        return check

    def refused(m: Series) -> float:
        fw = {"kind": "redis", "target": "cache"}
        return value(m, "tradeops_probe_errors_total", **fw, reason="refused") or 0

    await eventually(await up_is(1))
    redis_server.stop()
    # the run in flight at the stop may fail otherwise (a dropped connection): wait
    # for a refused one, not just for the first failure
    m = await scrape_until(run, lambda m: _up_of(m) == 0 and refused(m) >= 1, timeout=10)
    assert with_label(m, "tradeops_redis_memory_used_bytes") == {}
    assert (
        value(m, "tradeops_probe_last_success_timestamp_seconds", kind="redis", target="cache")
        is not None
    )
    redis_server.start()
    m = await scrape_until(run, lambda m: _up_of(m) == 1, timeout=10)
    assert with_label(m, "tradeops_redis_memory_used_bytes") != {}


async def test_hung_server_times_out_and_metrics_stay_fast(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(_config(redis_server, interval="1s", timeout="400ms"))
    await eventually(lambda: _is_up(run))
    redis_server.pause()
    try:

        async def timed_out() -> bool:
            m = await run.scrape()
            return (
                value(
                    m, "tradeops_probe_errors_total", kind="redis", target="cache", reason="timeout"
                )
                or 0
            ) >= 1

        await eventually(timed_out, timeout=10)
        m = await run.scrape()
        assert value(m, "tradeops_up", kind="redis", target="cache") == 0
        duration = value(m, "tradeops_probe_duration_seconds", kind="redis", target="cache")
        assert duration is not None and 0.35 < duration < 0.8
        worst = 0.0
        for _ in range(20):
            start = time.perf_counter()
            await run.scrape()
            worst = max(worst, time.perf_counter() - start)
        assert worst < 0.1, f"/metrics took {worst:.3f}s while the target hangs"
    finally:
        redis_server.resume()


async def _is_up(run: Running) -> bool:
    return await _up(run) == 1


async def test_garbage_on_the_port_is_a_protocol_error(
    tmp_path: Any, exporter_factory: Factory
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"\x00\xffNOT-RESP garbage\r\n" * 4)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        run: Running = await exporter_factory(f"""
redis:
  - {{name: cache, address: "127.0.0.1:{port}", interval: 1s, timeout: 500ms}}
""")

        async def protocol_error() -> bool:
            m = await run.scrape()
            return (
                value(
                    m,
                    "tradeops_probe_errors_total",
                    kind="redis",
                    target="cache",
                    reason="protocol",
                )
                or 0
            ) >= 1

        await eventually(protocol_error, timeout=4)
        assert await _up(run) == 0


async def test_replication_is_seen_from_both_ends(
    redis_server: Redis, tmp_path: Any, exporter_factory: Factory
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


async def test_tls_connection_and_its_failures(tmp_path: Any, exporter_factory: Factory) -> None:
    cert, key = self_signed_cert(tmp_path)
    other_ca, _ = self_signed_cert(tmp_path / "other")
    server = Redis(tmp_path, tls=(cert, key)).start()
    try:
        run: Running = await exporter_factory(f"""
redis:
  - {{name: tls, address: "{server.address}", interval: 1s, timeout: 500ms,
      tls: {{ca_file: {cert}}}}}
  - {{name: plain, address: "{server.address}", interval: 1s, timeout: 500ms}}
  - {{name: wrong-ca, address: "{server.address}", interval: 1s, timeout: 500ms,
      tls: {{ca_file: {other_ca}}}}}
""")

        async def settled() -> bool:
            m = await run.scrape()
            return all(
                (value(m, "tradeops_probe_runs_total", kind="redis", target=t) or 0) >= 2
                for t in ("tls", "plain", "wrong-ca")
            )

        await eventually(settled, timeout=8)
        m = await run.scrape()
        assert value(m, "tradeops_up", kind="redis", target="tls") == 1
        assert value(m, "tradeops_redis_role_primary", target="tls") == 1
        for target in ("plain", "wrong-ca"):
            assert value(m, "tradeops_up", kind="redis", target=target) == 0
        wrong_ca = with_label(m, "tradeops_probe_errors_total", kind="redis", target="wrong-ca")
        assert {dict(k)["reason"] for k, v in wrong_ca.items() if v} == {"protocol"}
    finally:
        server.stop()


def _admin(server: Redis) -> redis.Redis:
    """A plain client for the test's own set-up commands (the default user)."""
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)


def _canary_logs(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno == level and r.getMessage().startswith("redis canary")
    ]


def _reasons(m: Series, target: str = "cache") -> set[str]:
    errors = with_label(m, "tradeops_probe_errors_total", kind="redis", target=target)
    return {dict(k)["reason"] for k, v in errors.items() if v}


async def test_canary_on_a_read_only_replica_keeps_the_target_up(
    redis_server: Redis,
    tmp_path: Path,
    exporter_factory: Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The address points at a replica (as right after a failover): the canary's
    SET gets READONLY, the rest of the target is still reported."""
    secret = "replica-s3cret-pw"
    replica = Redis(tmp_path / "replica", password=secret).start()
    caplog.set_level(logging.DEBUG, logger="exporter")
    try:
        with redis.Redis(host="127.0.0.1", port=replica.port, password=secret) as admin:
            admin.execute_command("REPLICAOF", "127.0.0.1", str(redis_server.port))
            assert admin.config_get("replica-read-only") == {"replica-read-only": "yes"}
        pw = tmp_path / "pw"
        pw.write_text(secret)
        run: Running = await exporter_factory(f"""
redis:
  - {{name: cache, address: "{replica.address}", interval: 300ms, timeout: 250ms,
      password_file: "{pw}", canary: {{ttl: 30s}}}}
""")

        def refused_thrice(m: Series) -> bool:
            return (
                value(m, "tradeops_redis_canary_success", target="cache") == 0
                and (value(m, "tradeops_probe_runs_total", kind="redis", target="cache") or 0) >= 3
            )

        m = await scrape_until(run, refused_thrice, timeout=15)
        assert _up_of(m) == 1
        assert value(m, "tradeops_redis_role_primary", target="cache") == 0
        assert value(m, "tradeops_redis_memory_used_bytes", target="cache") is not None
        assert value(m, "tradeops_redis_canary_roundtrip_seconds", target="cache") is None
        assert _reasons(m) == set()
        warnings = _canary_logs(caplog, logging.WARNING)
        assert len(warnings) == 1, "one WARNING when the canary starts failing, not one per run"
        fields = getattr(warnings[0], "fields", {})
        assert fields["target"] == "cache"
        assert fields["error"].startswith("ReadOnlyError:")
        assert _canary_logs(caplog, logging.DEBUG), "repeats are logged at DEBUG"

        # the replica is promoted: the canary works again and its recovery is logged
        with redis.Redis(host="127.0.0.1", port=replica.port, password=secret) as admin:
            admin.execute_command("REPLICAOF", "NO", "ONE")
        m = await scrape_until(
            run, lambda m: value(m, "tradeops_redis_canary_success", target="cache") == 1
        )
        assert value(m, "tradeops_redis_role_primary", target="cache") == 1
        assert value(m, "tradeops_redis_canary_roundtrip_seconds", target="cache") is not None
        assert _canary_logs(caplog, logging.INFO)
        for record in caplog.records:
            assert secret not in record.getMessage()
            assert secret not in str(getattr(record, "fields", ""))
    finally:
        replica.stop()


async def test_canary_under_maxmemory_noeviction_keeps_the_target_up(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    with _admin(redis_server) as admin:
        admin.set("some:data", "x" * 10_000)
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            admin.set("more:data", "x")
    run: Running = await exporter_factory(
        _config(redis_server, "    canary: {ttl: 30s}", interval="300ms", timeout="250ms")
    )

    def refused_twice(m: Series) -> bool:
        return (
            value(m, "tradeops_redis_canary_success", target="cache") == 0
            and (value(m, "tradeops_probe_runs_total", kind="redis", target="cache") or 0) >= 2
        )

    m = await scrape_until(run, refused_twice)
    assert _up_of(m) == 1
    assert value(m, "tradeops_redis_memory_max_bytes", target="cache") == 1
    assert value(m, "tradeops_redis_role_primary", target="cache") == 1
    assert value(m, "tradeops_redis_canary_roundtrip_seconds", target="cache") is None
    assert _reasons(m) == set()

    with _admin(redis_server) as admin:
        admin.config_set("maxmemory", 0)
    m = await scrape_until(
        run, lambda m: value(m, "tradeops_redis_canary_success", target="cache") == 1
    )
    assert _up_of(m) == 1
    assert value(m, "tradeops_redis_canary_roundtrip_seconds", target="cache") is not None


def _documented_acl() -> str:
    """The read-only ACL line of docs/redis.md, exactly as documented."""
    doc = (Path(__file__).parents[3] / "docs" / "redis.md").read_text()
    found = re.findall(r"`(ACL SETUSER monitor [^`\n]+)`", doc)
    assert len(found) == 1, "docs/redis.md should hold the ACL on one line in backticks"
    return str(found[0])


def _create_user(server: Redis, acl_line: str, password: str) -> None:
    words = acl_line.replace(">PASSWORD", f">{password}").split()
    assert words[:2] == ["ACL", "SETUSER"]
    with _admin(server) as admin:
        assert admin.execute_command(*words) in (b"OK", True)


async def test_documented_read_only_acl_is_enough_with_a_db(
    redis_server: Redis, tmp_path: Path, exporter_factory: Factory
) -> None:
    _create_user(redis_server, _documented_acl(), "monitor-pw")
    (tmp_path / "pw").write_text("monitor-pw")
    with _admin(redis_server) as admin:
        admin.select(1)
        admin.set("hb:ingest", int(time.time()))
        admin.hset("hb:risk", "ts", int(time.time()))
        admin.xadd("s:orders", {"side": "buy"})
        admin.xgroup_create("s:orders", "risk", id="0")
    run: Running = await exporter_factory(
        _config(
            redis_server,
            f"""
    username: monitor
    password_file: "{tmp_path / "pw"}"
    db: 1
    heartbeats:
      - {{name: ingest, key: "hb:ingest"}}
      - {{name: risk, key: "hb:risk", field: ts}}
    streams:
      - {{name: orders, key: "s:orders"}}
""",
        )
    )
    m = await scrape_until(run, lambda m: _up_of(m) is not None)
    assert _up_of(m) == 1, _reasons(m)
    t = {"target": "cache"}
    assert value(m, "tradeops_redis_heartbeat_present", **t, heartbeat="ingest") == 1
    assert value(m, "tradeops_redis_heartbeat_present", **t, heartbeat="risk") == 1
    assert value(m, "tradeops_redis_stream_length", **t, stream="orders") == 1
    assert value(m, "tradeops_redis_stream_last_entry_timestamp_seconds", **t, stream="orders")
    assert (
        value(m, "tradeops_redis_stream_group_consumers", **t, stream="orders", group="risk") == 0
    )
    assert value(m, "tradeops_redis_db_keys", **t, db="1") == 3


async def test_acl_refusing_a_needed_command_is_an_auth_failure(
    redis_server: Redis, tmp_path: Path, exporter_factory: Factory
) -> None:
    """NOPERM reaches redis-py as NoPermissionError, whose text lacks "NOPERM"."""
    _create_user(redis_server, "ACL SETUSER no-info on >PASSWORD +@all -info ~*", "pw-one")
    no_select = _documented_acl().replace("monitor", "no-select").replace(" +select", "")
    _create_user(redis_server, no_select, "pw-two")
    (tmp_path / "pw1").write_text("pw-one")
    (tmp_path / "pw2").write_text("pw-two")
    run: Running = await exporter_factory(f"""
redis:
  - {{name: no-info, address: "{redis_server.address}", interval: 1s, timeout: 500ms,
      username: no-info, password_file: "{tmp_path / "pw1"}"}}
  - {{name: no-select, address: "{redis_server.address}", interval: 1s, timeout: 500ms,
      username: no-select, password_file: "{tmp_path / "pw2"}", db: 1}}
""")

    def both_failed(m: Series) -> bool:
        return all(_reasons(m, t) for t in ("no-info", "no-select"))

    m = await scrape_until(run, both_failed)
    for target in ("no-info", "no-select"):
        assert value(m, "tradeops_up", kind="redis", target=target) == 0
        assert _reasons(m, target) == {"auth"}
    assert with_label(m, "tradeops_redis_memory_used_bytes") == {}


async def _later_run(run: Running) -> Series:
    """The scrape of a successful run that started after this call: the scrape shows
    the newest finished run, and run N+2 starts only once N+1 (begun after the call
    at the latest) has finished."""
    seen = await run.runs()

    def later(m: Series) -> bool:
        runs = value(m, "tradeops_probe_runs_total", kind="redis", target="cache") or 0
        return runs >= seen + 2 and _up_of(m) == 1

    return await scrape_until(run, later)


async def _until_info(admin: redis.Redis, check: Callable[[dict[str, Any]], bool]) -> None:
    async def holds() -> bool:
        return check(admin.info())

    await eventually(holds)


async def test_memory_clients_and_keyspace_counters_match_info(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    t = {"target": "cache"}
    admin = _admin(redis_server)
    blocker = socket.create_connection(("127.0.0.1", redis_server.port))
    try:
        # evict for real: a limit just above the memory in use, then 2 MB of writes
        admin.config_set("maxmemory-policy", "allkeys-random")
        admin.config_set("maxmemory", admin.info("memory")["used_memory"] + 256 * 1024)
        for batch in range(20):
            pipe = admin.pipeline(transaction=False)
            for i in range(100):
                pipe.set(f"filler:{batch}:{i}", "x" * 1024)
            pipe.execute()
        evicted = admin.info("stats")["evicted_keys"]
        assert evicted > 0
        admin.config_set("maxmemory", 64 * 1024 * 1024)  # far above use: evictions stop
        admin.mset({"k:1": "a", "k:2": "b"})
        run: Running = await exporter_factory(
            _config(redis_server, interval="300ms", timeout="250ms")
        )
        m = await _later_run(run)
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
        await _until_info(admin, lambda i: i["blocked_clients"] == 1)
        m = await _later_run(run)
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
        await _until_info(admin, lambda i: i["blocked_clients"] == 0)
        m = await _later_run(run)
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
    admin = _admin(server)
    try:
        run: Running = await exporter_factory(_config(server, interval="300ms", timeout="250ms"))
        m = await _later_run(run)
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
        m = await _later_run(run)
        assert value(m, "tradeops_redis_rdb_last_save_timestamp_seconds", **t) == saved

        admin.config_set("dir", "/proc")
        admin.bgsave()
        await _until_info(admin, lambda i: i["rdb_bgsave_in_progress"] == 0)
        assert admin.info("persistence")["rdb_last_bgsave_status"] == "err"
        m = await _later_run(run)
        assert value(m, "tradeops_redis_rdb_last_bgsave_ok", **t) == 0
        assert value(m, "tradeops_redis_rdb_last_save_timestamp_seconds", **t) == saved

        admin.config_set("dir", str(server.dir))
        admin.config_set("appendonly", "yes")
        await _until_info(
            admin, lambda i: i["aof_rewrite_in_progress"] == 0 and i["aof_rewrite_scheduled"] == 0
        )
        info = admin.info("persistence")
        assert (info["aof_enabled"], info["aof_last_write_status"]) == (1, "ok")
        assert info["aof_last_bgrewrite_status"] == "ok"
        m = await _later_run(run)
        assert value(m, "tradeops_redis_aof_enabled", **t) == 1
        assert value(m, "tradeops_redis_aof_last_write_ok", **t) == 1
        assert value(m, "tradeops_redis_aof_last_rewrite_ok", **t) == 1

        admin.config_set("dir", "/proc")
        with pytest.raises(redis.exceptions.ResponseError):
            admin.bgrewriteaof()
        info = admin.info("persistence")
        assert (info["aof_last_bgrewrite_status"], info["aof_last_write_status"]) == ("err", "ok")
        m = await _later_run(run)
        assert value(m, "tradeops_redis_aof_last_rewrite_ok", **t) == 0
        assert value(m, "tradeops_redis_aof_last_write_ok", **t) == 1
        assert value(m, "tradeops_redis_aof_enabled", **t) == 1
    finally:
        with contextlib.suppress(redis.exceptions.RedisError):
            admin.config_set("dir", str(server.dir))
        admin.close()
        server.stop()


async def test_heartbeat_max_gap_is_exported_with_the_resolved_calendar(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    with _admin(redis_server) as admin:
        admin.set("hb:ingest", int(time.time()))
        admin.xadd("hb:stream", {"not": "a timestamp"})
    run: Running = await exporter_factory(f"""
calendars:
  - name: xnys
    timezone: America/New_York
    sessions: [{{days: [mon, tue, wed, thu, fri], open: "09:30", close: "16:00"}}]
  - {{name: xlon, exchange: XLON}}
redis:
  - name: cache
    address: {redis_server.address}
    interval: 1s
    timeout: 500ms
    calendar: xnys
    heartbeats:
      - {{name: ingest, key: "hb:ingest"}}
      - {{name: risk, key: "hb:risk", max_gap: 5m, calendar: xlon}}
      - {{name: clock, key: "hb:clock", max_gap: 1500ms, calendar: always}}
      - {{name: wrongtype, key: "hb:stream"}}
  - name: plain
    address: {redis_server.address}
    interval: 1s
    timeout: 500ms
    heartbeats:
      - {{name: ingest, key: "hb:ingest"}}
""")
    m = await scrape_until(
        run,
        lambda m: (
            value(m, "tradeops_up", kind="redis", target="cache") == 1
            and value(m, "tradeops_up", kind="redis", target="plain") == 1
        ),
    )
    assert with_label(m, "tradeops_redis_heartbeat_max_gap_seconds") == {
        # the default under the target's calendar
        frozenset({("target", "cache"), ("heartbeat", "ingest"), ("calendar", "xnys")}): 60,
        # its own maximum gap and calendar; present although the key does not exist
        frozenset({("target", "cache"), ("heartbeat", "risk"), ("calendar", "xlon")}): 300,
        frozenset({("target", "cache"), ("heartbeat", "clock"), ("calendar", "always")}): 1.5,
        # a key holding another type: still its threshold
        frozenset({("target", "cache"), ("heartbeat", "wrongtype"), ("calendar", "xnys")}): 60,
        # a target without a calendar follows always
        frozenset({("target", "plain"), ("heartbeat", "ingest"), ("calendar", "always")}): 60,
    }
    assert value(m, "tradeops_redis_heartbeat_present", target="cache", heartbeat="risk") == 0
    assert value(m, "tradeops_redis_heartbeat_present", target="cache", heartbeat="wrongtype") == 0
    assert value(m, "tradeops_redis_heartbeat_present", target="cache", heartbeat="ingest") == 1

    redis_server.stop()  # a failed run withdraws the thresholds with the data
    m = await scrape_until(
        run, lambda m: value(m, "tradeops_up", kind="redis", target="cache") == 0
    )
    assert with_label(m, "tradeops_redis_heartbeat_max_gap_seconds", target="cache") == {}


def _wrapped(outer: Exception, cause: BaseException) -> Exception:
    """``outer`` raised while handling ``cause``, as redis-py wraps socket errors."""
    try:
        try:
            raise cause
        except BaseException:
            raise outer  # noqa: B904 -- redis-py raises without "from"
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        # the address is in redis-py's messages: a host's name decides nothing
        (
            _wrapped(
                redis.exceptions.ConnectionError(
                    "Error while reading from cache-timeout.internal:6379 :"
                    " (104, 'Connection reset by peer')"
                ),
                ConnectionResetError(104, "Connection reset by peer"),
            ),
            "protocol",
        ),
        (
            _wrapped(
                redis.exceptions.ConnectionError(
                    "Error 113 connecting to refused-cache.internal:6379. No route to host."
                ),
                OSError(113, "No route to host"),
            ),
            "refused",
        ),
        (
            _wrapped(
                redis.exceptions.ConnectionError("Connection closed by server."),
                asyncio.IncompleteReadError(b"", 2),
            ),
            "protocol",
        ),
        (
            _wrapped(
                redis.exceptions.ConnectionError(
                    "Error -2 connecting to nowhere.invalid:6379. Name or service not known."
                ),
                socket.gaierror(-2, "Name or service not known"),
            ),
            "other",
        ),
    ],
)
def test_classify_goes_by_type_and_cause_not_by_message(exc: Exception, reason: str) -> None:
    assert classify(exc) == reason


async def test_a_busy_servers_replies_fit_the_default_budget(redis_server: Redis) -> None:
    """What one run reads from a busy, fully configured server, against the kind's
    default ``response_budget``: 2000 clients connected (INFO's clients section does
    not grow with them; the probe reads no per-client list), 16 databases holding
    keys, 50 heartbeat keys, 20 streams of 1 KB entries with 10 consumer groups each."""
    clients = [socket.create_connection(("127.0.0.1", redis_server.port)) for _ in range(2000)]
    try:
        with _admin(redis_server) as admin:
            for db in range(16):
                admin.execute_command("SELECT", db)
                admin.mset({f"k:{i}": "v" for i in range(100)})
            admin.execute_command("SELECT", 0)
            for i in range(50):
                admin.set(f"hb:{i}", int(time.time()))
            for s in range(20):
                pipe = admin.pipeline(transaction=False)
                for e in range(20):
                    pipe.xadd(f"s:{s}", {"order": "x" * 1000, "seq": e})
                for g in range(10):
                    pipe.xgroup_create(f"s:{s}", f"group-{g}", id="0")
                pipe.execute()
            assert admin.info("clients")["connected_clients"] > 2000
        target = RedisTarget.model_validate(
            {
                "name": "busy",
                "address": redis_server.address,
                "interval": 5,
                "timeout": 3,
                "canary": {},
                "heartbeats": [{"name": f"hb{i}", "key": f"hb:{i}"} for i in range(50)],
                "streams": [{"name": f"s{s}", "key": f"s:{s}"} for s in range(20)],
            }
        )
        state = RedisState(target)
        try:
            used = []
            for _ in range(3):  # the first run's handshake included
                outcome = await run_probe(KIND, target, state, 3.0)
                assert outcome.ok, outcome.error
                used.append(state.budget.used)
        finally:
            await state.aclose()
    finally:
        for client in clients:
            client.close()
    limit = KIND.response_budget
    report(
        f"redis busy server: {max(used) / 1000:.0f} KB read per run"
        f" (default response_budget {format_size(limit)})"
    )
    assert min(used) > 0, "every connection charges the budget"
    assert max(used) * 8 < limit, "the default leaves less than 8x room"
