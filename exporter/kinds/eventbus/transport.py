"""The canary's bus transports: a Kafka topic or a Redis stream, through the Kafka
and Redis kinds' own bounded clients and settings.

A canary travels on its own topic or stream, so real consumers never see it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ...budget import ReadBudget
from ...model import parse_host_port
from ...probe import ProbeError, classify_error
from ..kafka import client as kafka_client
from ..kafka.client import BoundedClient, describe
from ..kafka.connection import settings
from ..redis.client import bounded_client, tls_kwargs
from .config import CanaryConfig, KafkaCanary, RedisCanary

UNMETERED = ReadBudget(1 << 62)
"""For a transport made without a budget: counts, never runs out."""
FETCH_MAX_BYTES = 64 << 10
"""The most one fetch of the canary partition returns: hundreds of canaries, and
well within the frame limit of the event-bus kind's default budget."""


class Transport(Protocol):
    """What the canary needs from a bus transport."""

    async def start(self) -> None:
        """Connect; position the reader after everything already on the topic/stream."""

    async def publish(self, payload: bytes) -> None:
        """Publish one canary and wait for the transport to accept it."""

    async def poll(self, timeout: float) -> Sequence[bytes]:
        """Payloads read since the last poll, waiting up to ``timeout`` for the first."""

    def idle(self) -> None:
        """Between runs: stop background reading (the position is kept)."""

    async def aclose(self) -> None:
        """Disconnect."""


class KafkaTransport:
    """Producer and manually assigned consumer on partition 0 of the canary topic.

    Every connection its clients open is one of the Kafka probe's bounded
    connections, charging ``budget`` (the probe state's; without one, nothing caps
    the bytes, but frames are still checked); its clients are configured as the
    Kafka probe's (``kafka.connection.settings``), and its failures are reported
    with the Kafka probe's reasons (``kafka.client.classify``).
    """

    def __init__(self, cfg: KafkaCanary, timeout: float, budget: ReadBudget | None = None) -> None:
        self.cfg = cfg
        self.budget = budget
        self.tp = TopicPartition(cfg.topic, 0)
        ssl_context = cfg.tls.context() if cfg.tls is not None else None
        self.common: dict[str, Any] = {
            "bootstrap_servers": cfg.servers(),
            **settings(cfg, ssl_context, max(1.0, timeout)),
            "connections_max_idle_ms": 540_000,
        }
        self.producer = AIOKafkaProducer(**self.common, acks=1, linger_ms=0)
        self.consumer = AIOKafkaConsumer(
            **self.common,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=10,
            fetch_max_bytes=FETCH_MAX_BYTES,
            max_partition_fetch_bytes=FETCH_MAX_BYTES,
        )
        self._bound(self.producer.client)
        self._bound(self.consumer._client)

    def _bound(self, client: Any) -> None:
        """Make an aiokafka client open bounded connections (before it connects)."""
        BoundedClient.adopt(client, self.budget or UNMETERED)

    async def start(self) -> None:
        with _kafka_errors():
            if self.cfg.create_topic:
                await self._ensure_topic()
            await self.producer.start()
            await self.consumer.start()
            self.consumer.assign([self.tp])
            await self.consumer.seek_to_end(self.tp)
            await self.consumer.position(self.tp)

    def idle(self) -> None:
        self.consumer.pause(self.tp)

    async def _ensure_topic(self) -> None:
        """Create the topic unless the cluster has it (asking about this topic only:
        a large cluster's list of every topic may not fit the frame limit)."""
        admin = AIOKafkaAdminClient(**self.common)
        self._bound(admin._client)
        await admin.start()
        try:
            known = await admin.describe_topics([self.cfg.topic])
            if not any(t["topic"] == self.cfg.topic and not t["error_code"] for t in known):
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics([NewTopic(self.cfg.topic, 1, 1)])
        finally:
            await admin.close()

    async def publish(self, payload: bytes) -> None:
        with _kafka_errors():
            await self.producer.send_and_wait(
                self.cfg.topic,
                payload,
                key=b"tradeops-canary",
                partition=0,
                headers=[("tradeops-canary", b"1")],
            )

    async def poll(self, timeout: float) -> Sequence[bytes]:
        if self.consumer.paused():
            self.consumer.resume(self.tp)
        with _kafka_errors():
            batches = await self.consumer.getmany(
                self.tp, timeout_ms=max(1, int(timeout * 1000)), max_records=500
            )
        return [rec.value for recs in batches.values() for rec in recs if rec.value]

    async def aclose(self) -> None:
        try:
            await self.consumer.stop()
        finally:
            await self.producer.stop()


@contextlib.contextmanager
def _kafka_errors() -> Iterator[None]:
    """aiokafka's failures as the Kafka probe reports them: the same reasons."""
    try:
        yield
    except ProbeError:
        raise
    except Exception as exc:
        reason = classify_error(exc, kafka_client.classify)
        raise ProbeError(reason, f"canary via kafka: {describe(exc)}") from exc


class RedisTransport:
    """XADD with exact MAXLEN trimming (cheap on a short stream); XREAD from the last id.

    With a ``budget`` (the probe state's), its connections are the Redis probe's
    bounded ones (``redis.bounded_client``).
    """

    def __init__(
        self, cfg: RedisCanary, stream: str, timeout: float, budget: ReadBudget | None = None
    ) -> None:
        host, port = parse_host_port(cfg.address)
        self.cfg = cfg
        self.stream = stream
        self.last_id = "0-0"
        options: dict[str, Any] = {
            "db": cfg.db,
            "username": cfg.username,
            "password": cfg.password_value(),
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout + 1.0,  # above the longest XREAD BLOCK
            "client_name": "tradeops-exporter-canary",
            "max_connections": 2,
            "retry": Retry(NoBackoff(), 1),  # one reconnect; no backoff sleeps inside a run
        }
        if budget is not None:
            self.client = bounded_client(lambda: budget, cfg.address, cfg.tls, **options)
        else:
            self.client = aioredis.Redis(host=host, port=port, **options, **tls_kwargs(cfg.tls))

    async def start(self) -> None:
        newest: Any = await self.client.xrevrange(self.stream, count=1)
        if newest:
            self.last_id = _text(newest[0][0])

    def idle(self) -> None:
        pass  # XREAD only runs when asked

    async def publish(self, payload: bytes) -> None:
        await self.client.xadd(
            self.stream, {"canary": payload}, maxlen=self.cfg.maxlen, approximate=False
        )

    async def poll(self, timeout: float) -> Sequence[bytes]:
        reply: Any = await self.client.xread(
            {self.stream: self.last_id}, count=500, block=max(1, int(timeout * 1000))
        )
        out: list[bytes] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                self.last_id = _text(entry_id)
                value = fields.get(b"canary") if isinstance(fields, dict) else None
                if isinstance(value, bytes):
                    out.append(value)
        return out

    async def aclose(self) -> None:
        await self.client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def make_transport(
    cfg: CanaryConfig, target: str, timeout: float, budget: ReadBudget | None = None
) -> Transport:
    """The configured transport (not yet started); its connections charge ``budget``
    (the probe state's) when one is given."""
    if cfg.kafka is not None:
        return KafkaTransport(cfg.kafka, timeout, budget)
    assert cfg.redis is not None
    stream = cfg.redis.stream or f"tradeops:eventbus:canary:{target}"
    return RedisTransport(cfg.redis, stream, timeout, budget)
