"""Committed offsets read from OffsetFetch answers (exporter/kinds/kafka/offsets.py):
aiokafka's own response structs, encoded and decoded, since the test broker never
answers OffsetFetch with an error code."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.protocol.commit import OffsetFetchResponse_v3

from exporter.kinds.kafka.cluster import Cluster
from exporter.kinds.kafka.config import KafkaTarget
from exporter.kinds.kafka.groups import Group
from exporter.kinds.kafka.offsets import Fetched, fetch_committed, read_offset_fetch
from exporter.kinds.kafka.probe import KafkaState
from exporter.kinds.kafka.reach import Reach


def _target() -> KafkaTarget:
    return KafkaTarget(
        name="c", bootstrap_servers="127.0.0.1:9092", interval=5, timeout=4, status_window=3
    )


def test_offset_fetch_answer_is_split_into_committed_failed_and_uncommitted() -> None:
    """aiokafka's own response struct, encoded and decoded: the test broker never
    answers OffsetFetch with a per-partition error."""
    response = OffsetFetchResponse_v3.decode(
        OffsetFetchResponse_v3(
            throttle_time_ms=0,
            topics=[("t", [(0, 7, "", 0), (1, -1, "", 0), (2, -1, "", 14)])],
            error_code=0,
        ).encode()
    )
    got = read_offset_fetch(response, ["t"])  # t/3 (asked) is not in the answer at all
    assert got == Fetched({("t", 0): 7}, failed=frozenset({("t", 2)}), asked=frozenset({"t"}))
    no_commit = [got.uncommitted(("t", p)) for p in range(4)]
    assert no_commit == [False, True, False, True]
    assert not got.uncommitted(("u", 0))  # not asked about


class _Answers(KafkaState):
    """A fake ``send``: the test broker (Tansu) answers every OffsetFetch without an
    error code, so group-level and per-partition errors are forced here."""

    def __init__(self, target: KafkaTarget, answers: dict[str, Any]) -> None:
        super().__init__(target)
        self.answers = answers

    async def send(self, node: int, request: Any) -> Any:
        self.count(1)
        group = request._consumer_group
        answer = self.answers[group]
        return type(answer).decode(answer.encode())


async def test_offset_fetch_errors_count_failed_groups_and_failed_partitions() -> None:
    target = _target()
    cluster = Cluster(brokers=[], controller=1, partitions={"t": {0: 1, 1: 1, 2: 1}})
    partitions = [(0, 3, "", 0), (1, -1, "", 14), (2, -1, "", 16)]
    state = _Answers(
        target,
        {
            "g": OffsetFetchResponse_v3(0, [("t", partitions)], 0),
            "down": OffsetFetchResponse_v3(0, [], 15),  # coordinator not available
        },
    )
    groups = {"g": Group(coordinator=1), "down": Group(coordinator=1)}
    reach = Reach(asyncio.get_running_loop().time() + 5)
    fetched, failures = await fetch_committed(state, target, cluster, groups, 0.0, reach)
    assert failures == 3  # one group as a whole, two partitions
    assert reach.failed == {}  # error codes for one group are not the broker's failure
    assert set(fetched) == {"g"}
    assert fetched["g"].failed == {("t", 1), ("t", 2)}
    # a topic answered with errors stays in the group's topics: asked again next cycle
    assert state.discovery["g"].topics == {"t"}
