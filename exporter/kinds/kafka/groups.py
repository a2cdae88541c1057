"""Consumer groups: ListGroups on every broker, DescribeGroups per coordinator."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiokafka.errors as kerr
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.protocol.admin import (
    DescribeGroupsRequest_v0,
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
    ListGroupsRequest,
)
from aiokafka.protocol.api import Request

from .cluster import Cluster
from .config import KafkaTarget
from .reach import PHASES, Reach, Sender, ask

GROUP_STATES = (
    "stable",
    "preparing_rebalance",
    "completing_rebalance",
    "empty",
    "dead",
    "unknown",
)
_STATE_NAMES = {
    "Stable": "stable",
    "PreparingRebalance": "preparing_rebalance",
    "CompletingRebalance": "completing_rebalance",
    "AwaitingSync": "completing_rebalance",
    "Empty": "empty",
    "Dead": "dead",
}

_DescribeV0To2 = DescribeGroupsRequest_v0 | DescribeGroupsRequest_v1 | DescribeGroupsRequest_v2


class DescribeGroups(Request[_DescribeV0To2]):  # type: ignore[misc]
    """DescribeGroups capped at v2.

    aiokafka 0.14 decodes a v3 answer with the v2 schema (its v3 request names
    the v2 response), which drops ``authorized_operations`` and misreads every
    group after the first; v2 has everything the probe needs.
    """

    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(self, request_struct_class: Any) -> Any:
        return request_struct_class(self._groups)


@dataclass(slots=True)
class Group:
    """One listed group and what DescribeGroups said about it."""

    coordinator: int
    state: str = "unknown"
    members: int | None = None
    assigned: set[str] = field(default_factory=set)


async def list_groups(
    st: Sender, target: KafkaTarget, cluster: Cluster, reach: Reach
) -> dict[str, Group]:
    """The filtered groups listed by the brokers that answered ListGroups."""
    nodes = [b[0] for b in cluster.brokers]
    wait = reach.share(PHASES - 1)
    responses = await asyncio.gather(
        *(ask(st, reach, n, ListGroupsRequest(), wait, "ListGroups") for n in nodes)
    )
    groups: dict[str, Group] = {}
    for node, response in zip(nodes, responses, strict=True):
        if response is None:
            continue
        if response.error_code:
            error = kerr.for_code(response.error_code)
            reach.fail(node, "ListGroups", error(), error.__name__)
            continue
        for name, *_ in response.groups:
            if name not in groups and target.groups.keeps(name):
                groups[name] = Group(coordinator=node)
    return groups


def _assigned_topics(protocol_type: str, members: Iterable[Any]) -> set[str]:
    topics: set[str] = set()
    if protocol_type != "consumer":
        return topics
    for member in members:
        raw = member[4]
        if not raw:
            continue
        try:
            topics.update(t for t, _ in ConsumerProtocolMemberAssignment.decode(raw).assignment)
        except Exception:  # an assignment in another format tells us nothing
            continue
    return topics


async def describe_groups(st: Sender, groups: dict[str, Group], reach: Reach) -> None:
    """Fill in state, members and assigned topics; a group whose coordinator does not
    answer keeps state ``unknown`` and an unknown member count."""
    by_node: dict[int, list[str]] = defaultdict(list)
    for name, g in groups.items():
        by_node[g.coordinator].append(name)
    nodes = list(by_node)
    wait = reach.share(PHASES - 2)
    responses = await asyncio.gather(
        *(ask(st, reach, n, DescribeGroups(by_node[n]), wait, "DescribeGroups") for n in nodes)
    )
    for response in responses:
        if response is None:
            continue
        for error, name, state, protocol_type, _protocol, members, *_ in response.groups:
            described = groups.get(name)
            if described is None or error:
                continue
            described.state = _STATE_NAMES.get(state, "unknown")
            described.members = len(members)
            described.assigned = _assigned_topics(protocol_type, members)
