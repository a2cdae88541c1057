"""The cluster's Metadata: brokers, controller, and the filtered topics' partitions."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka.protocol.metadata import MetadataRequest

from ...probe import ProbeError
from .client import BrokersOnly
from .config import KafkaTarget
from .reach import PHASES, Reach, ask

if TYPE_CHECKING:
    from .probe import KafkaState

PARSE_INLINE_TOPICS = 1000
"""A Metadata answer with more topics is read into a ``Cluster`` in a worker thread."""


@dataclass(slots=True)
class Cluster:
    """What one Metadata response says, restricted to the filtered topics."""

    brokers: list[tuple[int, str, int, str | None]]
    controller: int
    partitions: dict[str, dict[int, int]]
    """topic -> partition -> leader (-1 when none)."""
    offline: int = 0
    under_replicated: int = 0


async def metadata(st: KafkaState, target: KafkaTarget, reach: Reach) -> Cluster:
    """The cluster metadata from the first known broker (in random order) that answers;
    each but the last is given its share of the cycle, the last the whole rest."""
    client = st.client
    assert client is not None
    nodes = [b.nodeId for b in client.cluster.brokers()]
    random.shuffle(nodes)
    if not nodes:
        raise ProbeError("protocol", "the cluster metadata lists no brokers")
    for i, node in enumerate(nodes):
        last = i == len(nodes) - 1
        wait = reach.share(1 if last else PHASES)
        response = await ask(st, reach, node, MetadataRequest(None), wait, "Metadata")
        if response is not None:
            break
    else:
        # No known broker answers: bootstrap afresh next time, in case the
        # cluster came back on other broker ids behind the same addresses.
        await st.aclose()
        raise reach.error()
    client.cluster.update_metadata(BrokersOnly(response))
    if len(response.topics) > PARSE_INLINE_TOPICS:  # keep the loop (and /metrics) free
        return await asyncio.to_thread(parse_metadata, response, target)
    return parse_metadata(response, target)


def parse_metadata(response: Any, target: KafkaTarget) -> Cluster:
    """A Metadata answer read into a ``Cluster``: the topics the target's filter keeps
    (internal ones only when asked for), their leaders and replica health."""
    brokers = [(b[0], b[1], b[2], b[3] if len(b) > 3 else None) for b in response.brokers]
    cluster = Cluster(brokers, getattr(response, "controller_id", -1), {})
    for topic_data in response.topics:
        error, name, partitions = topic_data[0], topic_data[1], topic_data[-1]
        internal = bool(topic_data[2]) if len(topic_data) > 3 else False
        if error or not target.topics.keeps(name):
            continue
        if (internal or name.startswith("__")) and not target.include_internal_topics:
            continue
        leaders: dict[int, int] = {}
        for _p_error, partition, leader, replicas, isr, *_ in partitions:
            leaders[partition] = leader
            cluster.offline += leader < 0
            cluster.under_replicated += len(isr) < len(replicas)
        cluster.partitions[name] = leaders
    return cluster
