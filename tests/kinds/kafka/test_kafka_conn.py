"""Bounded Kafka connections (exporter/kinds/kafka/client.py) against a real broker,
plain, over TLS and with SASL, and the aiokafka internals they rely on.

Tansu speaks neither TLS nor the SASL mechanisms the probe offers on a port the
probe can use with a known user, so TLS goes through a relay that terminates it in
front of a real Tansu (which advertises the relay's address), and SASL is checked
against a real Tansu that requires authentication and knows no user.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiokafka
import pytest
from aiokafka.client import AIOKafkaClient
from aiokafka.conn import AIOKafkaConnection, create_conn
from aiokafka.protocol.admin import SaslAuthenticateResponse_v1
from aiokafka.protocol.metadata import MetadataResponse_v1

from exporter.budget import BoundedProtocol, ReadBudget
from exporter.kinds.eventbus.config import KafkaCanary
from exporter.kinds.kafka import KIND
from exporter.kinds.kafka import metrics as M
from exporter.kinds.kafka.client import BoundedClient, BoundedConnection
from exporter.kinds.kafka.config import KafkaConnection, KafkaTarget
from exporter.kinds.kafka.connection import settings
from exporter.kinds.kafka.probe import KafkaState
from exporter.probe import Sample
from exporter.scheduler import run_probe
from stack import Tansu, free_port

from ...fixtures_kafka import commit, create_topic, produce
from ...helpers import self_signed_cert
from ...hostile import hostile_peer
from .test_kafka_faults import api_versions, correlation_id, frame, sasl_handshake

PINNED_VERSION = "0.14.0"
PINNED: dict[str, str] = {
    "AIOKafkaConnection.__init__": "16e2b58e6f2b760a",
    "AIOKafkaConnection.connect": "b0f9ba7f0cf6b432",
    "AIOKafkaConnection._read": "7b892995c0b81468",
    "AIOKafkaConnection._handle_frame": "46a7d9b8cf7ca222",
    "AIOKafkaConnection._create_reader_task": "9577a6e84c72c36b",
    "AIOKafkaConnection._do_sasl_handshake": "d4f7b5acbbecc07b",
    "AIOKafkaClient.bootstrap": "198943b004e55849",
    "AIOKafkaClient._get_conn": "68ce5d8391719d33",
    "AIOKafkaClient.send": "246b277687d7b687",
    "AIOKafkaClient.force_metadata_update": "cb7befef21c8f3f9",
    "create_conn": "673276cbddb4dc7c",
}
"""sha256 (first 16 hex digits) of the aiokafka code kafka_conn.py overrides or
follows: ``connect`` builds the transport with ``self._loop.create_connection``,
``_create_reader_task`` runs ``self._read``, ``_handle_frame`` pops the request a
frame answers, ``bootstrap``/``_get_conn`` are re-done over ``BoundedConnection``
with ``create_conn``'s settings, ``send`` raises ``NodeNotReadyError`` when
``_get_conn`` gives None."""


def _source_hash(name: str) -> str:
    scope: dict[str, Any] = {
        "AIOKafkaConnection": AIOKafkaConnection,
        "AIOKafkaClient": AIOKafkaClient,
        "create_conn": create_conn,
    }
    owner, _, attr = name.partition(".")
    obj = getattr(scope[owner], attr) if attr else scope[owner]
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def test_the_aiokafka_code_the_overrides_follow_is_unchanged() -> None:
    """Fails on an aiokafka upgrade: compare kafka_conn.py's overrides with the new
    code, then record the new hashes here."""
    assert aiokafka.__version__ == PINNED_VERSION
    got = {name: _source_hash(name) for name in PINNED}
    assert got == PINNED


# --- a real broker -----------------------------------------------------------------------


def _prefix() -> str:
    return f"c{uuid.uuid4().hex[:8]}"


def _target(bootstrap: str, prefix: str, **extra: Any) -> KafkaTarget:
    fields = {
        "name": "main",
        "bootstrap_servers": bootstrap,
        "interval": 4.0,
        "timeout": 3.0,  # a busy machine; each run takes milliseconds
        "groups": {"allow": [f"{prefix}-.*"]},
        "topics": {"allow": [f"{prefix}-.*"]},
    }
    return KafkaTarget.model_validate(fields | extra)


def _connections(state: KafkaState) -> list[Any]:
    assert state.client is not None
    return list(state.client._conns.values())


def _protocol(conn: Any) -> Any:
    return conn._writer.transport.get_protocol()


async def _seed(bootstrap: str, prefix: str) -> tuple[str, str]:
    topic, group = f"{prefix}-t", f"{prefix}-g"
    await create_topic(bootstrap, topic, 1)
    await produce(bootstrap, topic, {0: 2})
    await commit(bootstrap, group, {(topic, 0): 1})
    return topic, group


async def test_every_connection_charges_the_run_budget(tansu_server: Tansu) -> None:
    prefix = _prefix()
    await _seed(tansu_server.bootstrap, prefix)
    target = _target(tansu_server.bootstrap, prefix)
    state = KafkaState(target)
    try:
        used = []
        for _ in range(3):
            outcome = await run_probe(KIND, target, state, 3.0)
            assert outcome.ok, outcome.error
            used.append(state.budget.used)
        conns = _connections(state)
        assert isinstance(state.client, BoundedClient)
        assert state.client.budget is state.budget  # the run's, not the class default
        assert conns and all(isinstance(c, BoundedConnection) for c in conns)
        assert all(isinstance(_protocol(c), BoundedProtocol) for c in conns)
        assert state.budget.limit == 64 << 20  # the kind's default
    finally:
        await state.aclose()
    assert all(u > 0 for u in used), used
    assert used[2] == used[1], "reset before every run: the same answers cost the same"


async def test_an_answer_over_the_frame_limit_is_refused_unread(tansu_server: Tansu) -> None:
    """A real Metadata answer (a topic of 3,000 partitions, ~100 KB) under a budget of
    2 MiB, whose frame limit is 64 KiB: refused by its announced size, unread; under
    8 MiB (frames up to 256 KiB) it is read."""
    prefix = _prefix()
    await create_topic(tansu_server.bootstrap, f"{prefix}-wide", 3000)
    target = _target(tansu_server.bootstrap, prefix, response_budget="2MiB")
    roomy = _target(tansu_server.bootstrap, prefix, response_budget="8MiB")
    state, roomy_state = KafkaState(target), KafkaState(roomy)
    try:
        outcome = await run_probe(KIND, target, state, 3.0)
        ok = await run_probe(KIND, roomy, roomy_state, 3.0)
    finally:
        await state.aclose()
        await roomy_state.aclose()
    assert outcome.reason == "protocol"
    assert "may be at most 64KiB" in str(outcome.error)
    assert state.budget.used < 1 << 20
    assert ok.ok, ok.error
    assert roomy_state.budget.used > 64 << 10


# --- TLS -------------------------------------------------------------------------------------


class _AdvertisingTansu(Tansu):
    """Tansu listening on its port but advertising ``advertised`` (a relay in front)."""

    def __init__(self, root: Path, advertised: str) -> None:
        super().__init__(root)
        self.advertised = advertised

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("--advertised-listener-url") + 1] = f"tcp://{self.advertised}"
        return cmd


@contextlib.asynccontextmanager
async def _tls_relay(port: int, upstream: int, cert: Path, key: Path) -> AsyncIterator[None]:
    """Terminates TLS on ``port`` and relays the bytes to ``upstream`` (plain)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        both = asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        tasks.add(both)  # type: ignore[arg-type]
        try:
            await both
        finally:
            writer.transport.abort()
            up_writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=ctx)
    try:
        yield
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[_AdvertisingTansu, int, Path, Path]]:
    """(a Tansu advertising a relay's port, that port, cert, key)."""
    cert, key = self_signed_cert(tmp_path / "tls")
    relay = free_port()
    broker = _AdvertisingTansu(tmp_path / "broker", f"127.0.0.1:{relay}").start()
    try:
        yield broker, relay, cert, key
    finally:
        broker.stop()


async def test_tls_connections_are_bounded_and_read(
    tls_broker: tuple[_AdvertisingTansu, int, Path, Path],
) -> None:
    broker, relay, cert, key = tls_broker  # plain clients cannot seed it: it advertises TLS
    prefix = _prefix()
    async with _tls_relay(relay, broker.port, cert, key):
        target = _target(f"127.0.0.1:{relay}", prefix, tls={"ca_file": str(cert)})
        state = KafkaState(target)
        try:
            outcome = await run_probe(KIND, target, state, 3.0)
            conns = _connections(state)
            protocols = [_protocol(c) for c in conns]
        finally:
            await state.aclose()
    assert outcome.ok, outcome.error
    assert protocols and all(isinstance(p, BoundedProtocol) for p in protocols)
    assert state.budget.used > 0
    brokers = [s.value for s in outcome.samples if isinstance(s, Sample) and s.family is M.BROKERS]
    assert brokers == [1]


# --- SASL ------------------------------------------------------------------------------------


@pytest.mark.parametrize("section", ["kafka target", "event-bus canary"])
async def test_a_sasl_login_completes_over_a_bounded_connection(
    section: str, tmp_path: Path
) -> None:
    """A fake peer (Tansu's SASL users cannot be set up here) answering ApiVersions,
    SaslHandshake (PLAIN), a successful SaslAuthenticate and Metadata with aiokafka's
    own encoded responses: the bootstrap completes, charged to the budget, with the
    settings ``kafka.connection.settings`` makes of a Kafka target's or the event-bus
    canary's connection section (the one schema)."""

    def authenticated(request: bytes) -> bytes:
        body = SaslAuthenticateResponse_v1(0, None, b"", 0).encode()
        return frame(correlation_id(request), body)

    def metadata(request: bytes) -> bytes:
        body = MetadataResponse_v1([(7, "127.0.0.1", 1, None)], 7, []).encode()
        return frame(correlation_id(request), body)

    (tmp_path / "pw").write_text("pw")
    budget = ReadBudget(1 << 20)
    replies: list[Callable[[bytes], bytes]] = [
        api_versions,
        sasl_handshake,
        authenticated,
        metadata,
    ]
    async with hostile_peer("silent", replies=replies) as peer:
        fields = {
            "bootstrap_servers": peer.address,
            "sasl": {"username": "monitor", "password_file": str(tmp_path / "pw")},
        }
        conn: KafkaConnection = (
            KafkaTarget.model_validate(fields | {"name": "k"})
            if section == "kafka target"
            else KafkaCanary.model_validate(fields)
        )
        client = BoundedClient(
            budget=budget,
            background_metadata=False,
            bootstrap_servers=conn.servers(),
            **settings(conn, None, 2.0),
        )
        try:
            await client.bootstrap()
            brokers = [b.nodeId for b in client.cluster.brokers()]
        finally:
            await client.close()
    assert brokers == [7]
    assert budget.used > 0
