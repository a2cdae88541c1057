"""Helpers for the Kafka tests: topics, exact produce counts and commits on a real broker.

The test broker (Tansu) reports a partition's log end as the base offset of its
last record batch + 1, so every produce here sends one record per batch
(sequential ``send_and_wait``) to keep offsets exact.

Every helper takes aiokafka client settings as keywords (``**client``), such as
``tls_client(ca)``'s, for a broker reached over TLS.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.admin import DeleteGroupsRequest

TIMEOUT_MS = 10_000


def tls_client(ca: Path) -> dict[str, Any]:
    """Client settings for a broker whose certificate ``ca`` signed."""
    return {"security_protocol": "SSL", "ssl_context": ssl.create_default_context(cafile=ca)}


async def create_topic(bootstrap: str, topic: str, partitions: int, **client: Any) -> None:
    """Create a topic with ``partitions`` partitions (replication factor 1)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS, **client
    )
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, counts: dict[int, int], **client: Any) -> None:
    """Send ``counts[partition]`` records to each partition, one record per batch."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS, **client
    )
    await producer.start()
    try:
        for partition, n in counts.items():
            for i in range(n):
                await producer.send_and_wait(topic, b"m%d" % i, partition=partition)
    finally:
        await producer.stop()


async def commit(
    bootstrap: str, group: str, offsets: dict[tuple[str, int], int], **client: Any
) -> None:
    """Commit offsets for ``group`` without joining it (the group has no members)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=TIMEOUT_MS,
        **client,
    )
    await consumer.start()
    try:
        tps = {TopicPartition(t, p): o for (t, p), o in offsets.items()}
        consumer.assign(list(tps))
        await consumer.commit(tps)
    finally:
        await consumer.stop()


@asynccontextmanager
async def member(bootstrap: str, group: str, *topics: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A subscribed consumer that joins ``group`` and commits nothing by itself."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=TIMEOUT_MS,
    )
    await consumer.start()
    try:
        await asyncio.wait_for(_until_assigned(consumer), timeout=15)
        yield consumer
    finally:
        await consumer.stop()


async def _until_assigned(consumer: AIOKafkaConsumer) -> None:
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=200)


async def delete_group(bootstrap: str, group: str) -> None:
    """Delete a consumer group (DeleteGroups, sent to the only broker)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    await client.bootstrap()
    try:
        node = client.get_random_node()
        response = await client.send(node, DeleteGroupsRequest([group]))
        assert all(code == 0 for _, code in response.results), response
    finally:
        await client.close()


async def log_offsets(
    bootstrap: str, topic: str, partitions: int
) -> tuple[dict[int, int], dict[int, int]]:
    """(log-start, log-end) offset of each partition, as a plain consumer sees them."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    by_partition = [{tp.partition: o for tp, o in got.items()} for got in (starts, ends)]
    return by_partition[0], by_partition[1]


async def describe_cluster(bootstrap: str, **client: Any) -> dict[str, Any]:
    """The brokers and controller, as aiokafka's admin client reports them."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS, **client
    )
    await admin.start()
    try:
        cluster: dict[str, Any] = await admin.describe_cluster()
        return cluster
    finally:
        await admin.close()
