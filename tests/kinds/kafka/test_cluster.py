"""The cluster's Metadata read into a ``Cluster`` (exporter/kinds/kafka/cluster.py)."""

from __future__ import annotations

from aiokafka.protocol.metadata import MetadataResponse_v1

from exporter.kinds.kafka.cluster import parse_metadata
from exporter.kinds.kafka.config import KafkaTarget


def test_metadata_counts_offline_and_under_replicated_partitions() -> None:
    """A hand-built MetadataResponse (aiokafka's own struct, encoded and decoded):
    the single-broker test broker cannot have a leaderless or under-replicated
    partition, so this is the only way to exercise those counts."""
    response = MetadataResponse_v1(
        brokers=[(1, "b1", 9092, "r1"), (2, "b2", 9092, None)],
        controller_id=2,
        topics=[
            (0, "orders", False, [(0, 0, 1, [1, 2], [1, 2]), (0, 1, 2, [1, 2], [2])]),
            (5, "broken", False, []),
            (0, "prices", False, [(5, 0, -1, [1, 2], [])]),
            (0, "__consumer_offsets", True, [(0, 0, 1, [1], [1])]),
            (0, "audit", False, [(0, 0, 1, [1], [1])]),
        ],
    )
    decoded = MetadataResponse_v1.decode(response.encode())
    target = KafkaTarget(name="c", bootstrap_servers="b1:9092", topics={"deny": ["audit"]})
    cluster = parse_metadata(decoded, target)
    assert cluster.brokers == [(1, "b1", 9092, "r1"), (2, "b2", 9092, None)]
    assert cluster.controller == 2
    assert cluster.partitions == {"orders": {0: 1, 1: 2}, "prices": {0: -1}}
    assert cluster.offline == 1
    assert cluster.under_replicated == 2
