"""The canary's transports, alone: their connections are the Kafka and Redis kinds'
bounded ones, and their failures have the Kafka probe's reasons."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from exporter.budget import ReadBudget
from exporter.kinds.eventbus.config import CanaryConfig
from exporter.kinds.eventbus.tracker import decode, encode
from exporter.kinds.eventbus.transport import KafkaTransport, RedisTransport, make_transport
from exporter.kinds.kafka import KIND as KAFKA
from exporter.kinds.kafka.client import BoundedConnection
from exporter.kinds.kafka.config import KafkaTarget
from exporter.kinds.kafka.probe import KafkaState
from exporter.kinds.redis.client import BoundedConnection as BoundedRedisConnection
from exporter.probe import ProbeError
from exporter.scheduler import run_probe
from stack import Redis, Tansu

from ...hostile import Behaviour
from ..kafka.test_kafka_faults import kafka_peer


def _transport(config: dict[str, Any], budget: ReadBudget | None, timeout: float = 2.0) -> Any:
    return make_transport(CanaryConfig.model_validate(config), "runtime", timeout, budget)


async def test_kafka_canary_connections_charge_the_budget(tansu_server: Tansu) -> None:
    budget = ReadBudget(4 << 20)
    kafka = {"bootstrap_servers": tansu_server.bootstrap, "topic": "canary-budget"}
    transport = _transport({"kafka": kafka}, budget)
    assert isinstance(transport, KafkaTransport)
    try:
        await transport.start()
        await transport.publish(encode("me", "runtime", 0))
        got: list[bytes] = []
        for _ in range(20):
            got += await transport.poll(0.2)
            if got:
                break
        conns = [*transport.producer.client._conns.values()]
        conns += transport.consumer._client._conns.values()
    finally:
        await transport.aclose()
    assert [decode(raw, "me") for raw in got] == [0]
    assert conns and all(isinstance(c, BoundedConnection) for c in conns)
    assert all(isinstance(c.budget, ReadBudget) and c.budget is budget for c in conns)
    assert budget.used > 0


async def test_redis_canary_connections_charge_the_budget(redis_server: Redis) -> None:
    budget = ReadBudget(1 << 20)
    transport = _transport({"redis": {"address": redis_server.address}}, budget)
    assert isinstance(transport, RedisTransport)
    try:
        await transport.start()
        await transport.publish(encode("me", "runtime", 0))
        got = await transport.poll(0.5)
        pool = transport.client.connection_pool
    finally:
        await transport.aclose()
    assert [decode(raw, "me") for raw in got] == [0]
    assert issubclass(pool.connection_class, BoundedRedisConnection)
    assert budget.used > 0


OLD_SASL = ("sasl_mechanism", "username", "password_file")


@pytest.mark.parametrize(
    ("behaviour", "reason", "spelling"),
    [
        ("auth", "auth", "new"),
        ("auth", "auth", "old"),
        ("huge", "protocol", "new"),
        ("close", "protocol", "new"),
        ("garbage", "protocol", "new"),
    ],
)
async def test_kafka_canary_failures_have_the_kafka_probes_reasons(
    behaviour: Behaviour, reason: str, spelling: str, tmp_path: Path
) -> None:
    """The same hostile peer and the same connection settings, for the canary's clients
    and the Kafka probe: one reason (a refused SASL login is ``auth`` for both, with the
    canary's settings in the Kafka schema or in their deprecated spelling)."""
    (tmp_path / "pw").write_text("hostile-pw")
    sasl = {"mechanism": "PLAIN", "username": "u", "password_file": str(tmp_path / "pw")}
    async with kafka_peer(behaviour) as peer:
        conn: dict[str, Any] = {"bootstrap_servers": peer.address}
        if behaviour == "auth":
            conn["sasl"] = sasl
        kafka = conn | {"topic": "canary-x"}
        if spelling == "old":
            kafka = {"bootstrap": peer.address, "topic": "canary-x"}
            kafka |= dict(zip(OLD_SASL, sasl.values(), strict=True))
        transport = _transport({"kafka": kafka}, ReadBudget(4 << 20), timeout=1.0)
        try:
            with pytest.raises(ProbeError) as raised:
                await asyncio.wait_for(transport.start(), 5)
        finally:
            await transport.aclose()
        target = KafkaTarget.model_validate(conn | {"name": "k", "interval": 2, "timeout": 1})
        state = KafkaState(target)
        try:
            probe = await run_probe(KAFKA, target, state, 1.0)
        finally:
            await state.aclose()
    assert raised.value.reason == reason, raised.value
    assert str(raised.value).startswith("canary via kafka: ")
    assert probe.reason == reason, probe.error
    if behaviour == "huge":
        assert "2147483647-byte" in str(raised.value)


async def test_the_kafka_transport_is_configured_as_the_kafka_probe(tmp_path: Path) -> None:
    """Security settings from the one schema, through the one function."""
    (tmp_path / "pw").write_text("s3cret")
    sasl = {"mechanism": "SCRAM-SHA-256", "username": "u", "password_file": str(tmp_path / "pw")}
    conn = {"bootstrap_servers": "k1:9092, k2:9092", "sasl": sasl}
    transport = _transport({"kafka": conn}, None, timeout=0.5)
    assert isinstance(transport, KafkaTransport)
    await transport.aclose()
    target = KafkaTarget.model_validate(conn | {"name": "k", "interval": 2, "timeout": 1})
    probe_settings = KafkaState(target)._settings()
    assert transport.common == probe_settings | {
        "bootstrap_servers": ["k1:9092", "k2:9092"],
        "client_id": "tradeops-exporter-canary",
        "connections_max_idle_ms": 540_000,
    }
