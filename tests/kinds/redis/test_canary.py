"""The canary: a write the server refuses is the canary's failure, not the target's,
logged once per episode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from exporter.kinds.redis.canary import key_of
from exporter.kinds.redis.config import Canary
from stack import Redis

from ... import faults
from ...helpers import Running, Series, scrape_until, value
from .support import Factory, admin_client, reasons, server_yaml, up


def _canary_logs(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno == level and r.getMessage().startswith("redis canary")
    ]


def _refused_after(runs: int) -> Callable[[Series], bool]:
    """A ``scrape_until`` check: the canary failed, and ``cache`` has run ``runs`` times."""

    def check(m: Series) -> bool:
        failed = value(m, "tradeops_redis_canary_success", target="cache") == 0
        return failed and faults.runs_of(m, "redis", "cache") >= runs

    return check


def test_the_canary_key_defaults_to_one_per_target() -> None:
    assert key_of(Canary(), "cache") == "tradeops:canary:cache"
    assert key_of(Canary(key="ops:probe"), "cache") == "ops:probe"


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

        m = await scrape_until(run, _refused_after(3), timeout=15)
        assert up(m) == 1
        assert value(m, "tradeops_redis_role_primary", target="cache") == 0
        assert value(m, "tradeops_redis_memory_used_bytes", target="cache") is not None
        assert value(m, "tradeops_redis_canary_roundtrip_seconds", target="cache") is None
        assert reasons(m) == set()
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
    with admin_client(redis_server) as admin:
        admin.set("some:data", "x" * 10_000)
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            admin.set("more:data", "x")
    run: Running = await exporter_factory(
        server_yaml(redis_server, "    canary: {ttl: 30s}", interval="300ms", timeout="250ms")
    )

    m = await scrape_until(run, _refused_after(2))
    assert up(m) == 1
    assert value(m, "tradeops_redis_memory_max_bytes", target="cache") == 1
    assert value(m, "tradeops_redis_role_primary", target="cache") == 1
    assert value(m, "tradeops_redis_canary_roundtrip_seconds", target="cache") is None
    assert reasons(m) == set()

    with admin_client(redis_server) as admin:
        admin.config_set("maxmemory", 0)
    m = await scrape_until(
        run, lambda m: value(m, "tradeops_redis_canary_success", target="cache") == 1
    )
    assert up(m) == 1
    assert value(m, "tradeops_redis_canary_roundtrip_seconds", target="cache") is not None
