"""The event-bus canary: heartbeat events published on the bus transport and read back.

Each canary is a small JSON document that names itself (``type``), the probe
instance that sent it (a random id, so replicas and restarts never confuse each
other's canaries) and a sequence number. It travels on its own Kafka topic or
Redis stream, so real consumers never see it. The tracker keeps the counts and
the latency histogram across runs.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pydantic import Field, field_validator, model_validator
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ...budget import ReadBudget
from ...model import Duration, HostPort, HostTLSConfig, PasswordMixin, StrictModel, parse_host_port
from ...probe import Histogram, ProbeError, classify_error
from ..kafka import client as kafka_client
from ..kafka.client import BoundedClient, describe
from ..redis.client import bounded_client, tls_kwargs

CANARY_TYPE = "tradeops.eventbus.canary"
UNMETERED = ReadBudget(1 << 62)
"""For a transport made without a budget: counts, never runs out."""
FETCH_MAX_BYTES = 64 << 10
"""The most one fetch of the canary partition returns: hundreds of canaries, and
well within the frame limit of the event-bus kind's default budget."""


class KafkaCanary(PasswordMixin):
    """Kafka transport: a dedicated topic (partition 0), read without a consumer group."""

    bootstrap: list[str] = Field(min_length=1)
    topic: str = Field(default="tradeops.eventbus.canary", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    create_topic: bool = True
    """Create the topic (1 partition) when it does not exist."""
    tls: HostTLSConfig | None = None
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    username: str | None = None

    @field_validator("bootstrap", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return [v.strip() for v in value.split(",")] if isinstance(value, str) else value

    @field_validator("bootstrap")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            parse_host_port(address)
        return value

    @model_validator(mode="after")
    def _sasl(self) -> KafkaCanary:
        if self.sasl_mechanism and (self.username is None or self.password_value() is None):
            raise ValueError("sasl_mechanism needs username and password (or password_file)")
        return self


class RedisCanary(PasswordMixin):
    """Redis transport: a dedicated stream, trimmed to ``maxlen`` entries on every add."""

    address: HostPort
    stream: str | None = Field(default=None, min_length=1)
    """Defaults to ``tradeops:eventbus:canary:<target name>``."""
    maxlen: int = Field(default=1000, ge=10, le=1_000_000)
    db: int = Field(default=0, ge=0, le=15)
    username: str | None = None
    tls: HostTLSConfig | None = None


class CanaryConfig(StrictModel):
    """The optional ``canary`` section: exactly one transport."""

    kafka: KafkaCanary | None = None
    redis: RedisCanary | None = None
    count: int = Field(default=1, ge=1, le=20)
    """Canaries published per run (one at a time, each awaited)."""
    deadline: Duration = 2.0
    """A canary not read back this long after publishing is lost."""

    @model_validator(mode="after")
    def _one_transport(self) -> CanaryConfig:
        if (self.kafka is None) == (self.redis is None):
            raise ValueError("give exactly one transport: kafka or redis")
        return self

    @property
    def transport_name(self) -> str:
        """``kafka`` or ``redis``."""
        return "kafka" if self.kafka is not None else "redis"


@dataclass(slots=True)
class CanaryTracker:
    """Counters and the round-trip histogram, kept across runs."""

    buckets: tuple[float, ...]
    sent: int = 0
    lost: int = 0
    out_of_order: int = 0
    next_seq: int = 0
    max_seen: int = -1
    pending: dict[int, float] = field(default_factory=dict)
    """Sequence number -> monotonic time it was published."""
    rtt: Histogram = field(init=False)
    last_rtt: float | None = None
    last_success: float | None = None

    def __post_init__(self) -> None:
        self.rtt = Histogram(self.buckets)

    @property
    def received(self) -> int:
        """Canaries read back within the deadline: the round trips observed."""
        return self.rtt.count

    def new(self, now: float) -> int:
        """Allocate the next canary and start its clock."""
        seq = self.next_seq
        self.next_seq += 1
        self.sent += 1
        self.pending[seq] = now
        return seq

    def failed(self, seq: int) -> None:
        """The transport refused the canary: it is lost now."""
        if self.pending.pop(seq, None) is not None:
            self.lost += 1

    def expire(self, now: float, deadline: float) -> int:
        """Count canaries older than ``deadline`` as lost; returns how many."""
        old = [s for s, t in self.pending.items() if now - t > deadline]
        for seq in old:
            del self.pending[seq]
        self.lost += len(old)
        return len(old)

    def seen(self, seq: int, now: float, wall: float, deadline: float) -> None:
        """A canary of this probe came back."""
        if seq < self.max_seen:
            self.out_of_order += 1
        self.max_seen = max(self.max_seen, seq)
        sent_at = self.pending.pop(seq, None)
        if sent_at is None:
            return  # a duplicate or a late arrival (already counted lost)
        rtt = now - sent_at
        if rtt > deadline:
            self.lost += 1
            return
        self.rtt.observe(rtt)
        self.last_rtt = rtt
        self.last_success = wall


def encode(instance: str, target: str, seq: int) -> bytes:
    """A canary event: identifiable by ``type``, ``probe`` and ``seq``."""
    doc = {"type": CANARY_TYPE, "probe": instance, "target": target, "seq": seq}
    doc["sent_at"] = round(time.time(), 6)
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(raw: bytes | str | None, instance: str) -> int | None:
    """The sequence number of one of *this* probe's canaries; None for anything else."""
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("type") != CANARY_TYPE:
        return None
    seq = doc.get("seq")
    if doc.get("probe") != instance or isinstance(seq, bool) or not isinstance(seq, int):
        return None
    return seq


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
    the bytes, but frames are still checked), and its failures are reported with
    the Kafka probe's reasons (``kafka.classify``).
    """

    def __init__(self, cfg: KafkaCanary, timeout: float, budget: ReadBudget | None = None) -> None:
        self.cfg = cfg
        self.budget = budget
        self.tp = TopicPartition(cfg.topic, 0)
        ms = max(1000, int(timeout * 1000))
        common: dict[str, Any] = {
            "bootstrap_servers": cfg.bootstrap,
            "client_id": "tradeops-exporter-canary",
            "request_timeout_ms": ms,
            "connections_max_idle_ms": 540_000,
        }
        if cfg.tls is not None or cfg.sasl_mechanism is not None:
            protocol = "SASL_" if cfg.sasl_mechanism else ""
            common["security_protocol"] = protocol + ("SSL" if cfg.tls else "PLAINTEXT")
        if cfg.tls is not None:
            common["ssl_context"] = cfg.tls.context()
        if cfg.sasl_mechanism is not None:
            common.update(
                sasl_mechanism=cfg.sasl_mechanism,
                sasl_plain_username=cfg.username,
                sasl_plain_password=cfg.password_value(),
            )
        self.common = common
        self.producer = AIOKafkaProducer(**common, acks=1, linger_ms=0)
        self.consumer = AIOKafkaConsumer(
            **common,
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


def new_instance_id() -> str:
    """A random id for one probe state: canaries of other probes are ignored."""
    return uuid.uuid4().hex


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
