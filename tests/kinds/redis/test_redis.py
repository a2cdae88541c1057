"""The Redis kind against a real redis-server: what a healthy server reports, how a
stopped, hung or garbling one fails, the documented ACL, the default budget."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import pytest

from exporter.budget import format_size
from exporter.kinds.redis import KIND
from exporter.scheduler import run_probe
from stack import Redis

from ... import faults
from ...helpers import Running, Series, report, scrape_until, value, with_label
from .support import (
    Factory,
    admin_client,
    probe_state,
    reasons,
    redis_target,
    server_yaml,
    up,
)

_WATCHED = """
    canary: {ttl: 30s}
    heartbeats:
      - {name: ingest, key: "hb:ingest"}
      - {name: risk, key: "hb:risk", field: ts}
      - {name: missing, key: "hb:none"}
    streams:
      - {name: orders, key: "s:orders"}
"""
"""The keys ``test_healthy_server_reports_its_state`` watches."""


def _write_watched_keys(server: Redis, now: float) -> int:
    """Heartbeats in seconds and in milliseconds (a hash field), a stream with a
    group; returns the group's consumers."""
    client = socket.create_connection(("127.0.0.1", server.port))
    client.sendall(
        b"SET hb:ingest %d\r\nXADD s:orders * side buy\r\n"
        b"XGROUP CREATE s:orders risk 0\r\nHSET hb:risk ts %d\r\n" % (int(now), int(now * 1000))
    )
    client.recv(4096)
    client.close()
    with admin_client(server) as admin:
        admin.xgroup_createconsumer("s:orders", "risk", "pricer")
        consumers: int = admin.xinfo_groups("s:orders")[0]["consumers"]
    assert consumers == 1
    return consumers


async def test_healthy_server_reports_its_state(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    now = time.time()
    consumers = _write_watched_keys(redis_server, now)
    run: Running = await exporter_factory(server_yaml(redis_server, _WATCHED))
    # the canary key exists from the end of the first run
    m = await scrape_until(run, lambda m: faults.runs_of(m, "redis", "cache") >= 2)
    t = {"target": "cache"}
    assert value(m, "tradeops_redis_role_primary", **t) == 1
    identity = {"version": _server_version(redis_server), "role": "master", "mode": "standalone"}
    assert value(m, "tradeops_redis_info", **t, **identity) == 1
    assert 0 < value(m, "tradeops_redis_ping_seconds", **t) < 0.5  # type: ignore[operator]
    assert value(m, "tradeops_redis_memory_used_bytes", **t) > 100_000  # type: ignore[operator]
    assert value(m, "tradeops_redis_max_clients", **t) == 10000
    assert value(m, "tradeops_redis_canary_success", **t) == 1
    _assert_watched_keys(m, now, consumers)
    # db0 holds hb:ingest, s:orders, hb:risk and the canary key (which has a TTL)
    assert value(m, "tradeops_redis_db_keys", **t, db="0") == 4
    assert value(m, "tradeops_redis_db_keys_expiring", **t, db="0") == 1
    assert (
        value(m, "tradeops_probe_errors_total", kind="redis", target="cache", reason="timeout") == 0
    )


def _assert_watched_keys(m: Series, now: float, consumers: int) -> None:
    t = {"target": "cache"}
    heartbeat = "tradeops_redis_heartbeat_timestamp_seconds"
    assert value(m, heartbeat, **t, heartbeat="ingest") == int(now)
    assert value(m, heartbeat, **t, heartbeat="risk") == pytest.approx(int(now * 1000) / 1000)
    assert value(m, "tradeops_redis_heartbeat_present", **t, heartbeat="missing") == 0
    assert value(m, heartbeat, **t, heartbeat="missing") is None
    group = {**t, "stream": "orders", "group": "risk"}
    assert value(m, "tradeops_redis_stream_length", **t, stream="orders") == 1
    assert value(m, "tradeops_redis_stream_group_lag", **group) == 1
    assert value(m, "tradeops_redis_stream_group_pending", **group) == 0
    assert value(m, "tradeops_redis_stream_group_consumers", **group) == consumers
    last_entry = value(
        m, "tradeops_redis_stream_last_entry_timestamp_seconds", **t, stream="orders"
    )
    assert last_entry is not None and abs(last_entry - now) < 5


def _server_version(server: Redis) -> str:
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"INFO server\r\n")
        time.sleep(0.1)
        text = s.recv(65536).decode()
    return text.split("redis_version:")[1].split("\r\n")[0]


def _errors(m: Series, reason: str) -> float:
    return faults.errors_of(m, "redis", "cache").get(reason, 0)


async def test_stopped_server_withdraws_series_and_recovers(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(server_yaml(redis_server))
    await scrape_until(run, lambda m: up(m) == 1)
    redis_server.stop()
    # the run in flight at the stop may fail otherwise (a dropped connection): wait
    # for a refused one, not just for the first failure
    m = await scrape_until(run, lambda m: up(m) == 0 and _errors(m, "refused") >= 1, timeout=10)
    assert with_label(m, "tradeops_redis_memory_used_bytes") == {}
    assert (
        value(m, "tradeops_probe_last_success_timestamp_seconds", kind="redis", target="cache")
        is not None
    )
    redis_server.start()
    m = await scrape_until(run, lambda m: up(m) == 1, timeout=10)
    assert with_label(m, "tradeops_redis_memory_used_bytes") != {}


async def test_hung_server_times_out_and_metrics_stay_fast(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(server_yaml(redis_server, interval="1s", timeout="400ms"))
    await scrape_until(run, lambda m: up(m) == 1)
    redis_server.pause()
    try:
        await scrape_until(run, lambda m: _errors(m, "timeout") >= 1, timeout=10)
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


async def test_garbage_on_the_port_is_a_protocol_error(exporter_factory: Factory) -> None:
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
        await scrape_until(run, lambda m: _errors(m, "protocol") >= 1, timeout=4)
        assert up(await run.scrape()) == 0


def _documented_acl() -> str:
    """The read-only ACL line of docs/redis.md, exactly as documented."""
    doc = (Path(__file__).parents[3] / "docs" / "redis.md").read_text()
    found = re.findall(r"`(ACL SETUSER monitor [^`\n]+)`", doc)
    assert len(found) == 1, "docs/redis.md should hold the ACL on one line in backticks"
    return str(found[0])


def _create_user(server: Redis, acl_line: str, password: str) -> None:
    words = acl_line.replace(">PASSWORD", f">{password}").split()
    assert words[:2] == ["ACL", "SETUSER"]
    with admin_client(server) as admin:
        assert admin.execute_command(*words) in (b"OK", True)


async def test_documented_read_only_acl_is_enough_with_a_db(
    redis_server: Redis, tmp_path: Path, exporter_factory: Factory
) -> None:
    _create_user(redis_server, _documented_acl(), "monitor-pw")
    (tmp_path / "pw").write_text("monitor-pw")
    with admin_client(redis_server) as admin:
        admin.select(1)
        admin.set("hb:ingest", int(time.time()))
        admin.hset("hb:risk", "ts", int(time.time()))
        admin.xadd("s:orders", {"side": "buy"})
        admin.xgroup_create("s:orders", "risk", id="0")
    run: Running = await exporter_factory(
        server_yaml(
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
    m = await scrape_until(run, lambda m: up(m) is not None)
    assert up(m) == 1, reasons(m)
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
        return all(reasons(m, t) for t in ("no-info", "no-select"))

    m = await scrape_until(run, both_failed)
    for target in ("no-info", "no-select"):
        assert value(m, "tradeops_up", kind="redis", target=target) == 0
        assert reasons(m, target) == {"auth"}
    assert with_label(m, "tradeops_redis_memory_used_bytes") == {}


def _fill_busy(server: Redis) -> None:
    """16 databases holding keys, 50 heartbeat keys, 20 streams of 1 KB entries with
    10 consumer groups each."""
    with admin_client(server) as admin:
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


async def test_a_busy_servers_replies_fit_the_default_budget(redis_server: Redis) -> None:
    """What one run reads from a busy, fully configured server, against the kind's
    default ``response_budget``: 2000 clients connected (INFO's clients section does
    not grow with them; the probe reads no per-client list) and ``_fill_busy``'s keys."""
    clients = [socket.create_connection(("127.0.0.1", redis_server.port)) for _ in range(2000)]
    try:
        _fill_busy(redis_server)
        with admin_client(redis_server) as admin:
            assert admin.info("clients")["connected_clients"] > 2000
        target = redis_target(
            name="busy",
            address=redis_server.address,
            interval=5,
            timeout=3,
            canary={},
            heartbeats=[{"name": f"hb{i}", "key": f"hb:{i}"} for i in range(50)],
            streams=[{"name": f"s{s}", "key": f"s:{s}"} for s in range(20)],
        )
        used = []
        async with probe_state(target) as state:
            for _ in range(3):  # the first run's handshake included
                outcome = await run_probe(KIND, target, state, 3.0)
                assert outcome.ok, outcome.error
                used.append(state.budget.used)
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
