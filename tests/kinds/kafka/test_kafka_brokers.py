"""One broker of several down, hung or refusing: the cycle goes on with the others.

The test broker (Tansu) runs a single broker, so a second broker that is down or
hung can only be forced with a fake ``send``: every test here answers a hand-built
three-broker cluster from aiokafka's own response structs and fails broker 2 on
demand. The whole-cluster outage against the real broker is in ``test_kafka.py``.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import aiokafka.errors as kerr
import pytest
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.admin import (
    DescribeGroupsResponse_v0,
    ListGroupsRequest,
    ListGroupsResponse_v0,
)
from aiokafka.protocol.commit import OffsetFetchRequest, OffsetFetchResponse_v3
from aiokafka.protocol.metadata import MetadataRequest, MetadataResponse_v1
from aiokafka.protocol.offset import OffsetRequest, OffsetResponse_v1

from exporter.kinds.kafka import metrics as M
from exporter.kinds.kafka.config import KafkaTarget
from exporter.kinds.kafka.groups import DescribeGroups
from exporter.kinds.kafka.lag import Status
from exporter.kinds.kafka.offsets import LATEST
from exporter.kinds.kafka.probe import KafkaState, probe
from exporter.probe import ProbeContext, ProbeError, ProbeResult, Sample

LEADERS = {("t", 0): 1, ("t", 1): 2, ("u", 0): 3}
ENDS = {("t", 0): 10, ("t", 1): 20, ("u", 0): 5}
COORDINATORS = {"a": 1, "b": 2, "c": 3}
COMMITS = {
    "a": {("t", 0): 10, ("t", 1): 20, ("u", 0): 5},  # caught up: ok
    "b": {("t", 0): 4, ("u", 0): 5},  # t/0 stuck 6 behind, no members: stop when full
    "c": {("u", 0): 5},
}
Failure = str  # "refused", "hung" or "error code"


class FakeCluster(KafkaState):
    """A fake ``send`` for brokers 1-3 (Tansu runs one broker: a second broker that is
    down, hung or answering an error code cannot be produced there). Broker ``n`` in
    ``failing`` fails every request: refused, never answers, or (ListGroups) an error
    code for the whole request."""

    def __init__(self, target: KafkaTarget) -> None:
        super().__init__(target)
        self.failing: dict[int, Failure] = {}
        self.coordinators = dict(COORDINATORS)
        self.clock = itertools.count(1000, 10)

    async def connect(self) -> AIOKafkaClient:
        if self.client is None:
            client = AIOKafkaClient(bootstrap_servers="127.0.0.1:1")
            client.cluster.update_metadata(self._metadata())
            self.client = client
        return self.client

    def _metadata(self) -> Any:
        brokers = [(n, f"k{n}.internal", 9092, "") for n in (1, 2, 3)]
        topics = [
            (
                0,
                topic,
                False,
                [(0, p, LEADERS[(t, p)], [1, 2, 3], [1, 2, 3]) for t, p in LEADERS if t == topic],
            )
            for topic in ("t", "u")
        ]
        return _roundtrip(MetadataResponse_v1(brokers, 1, topics))

    async def send(self, node: int, request: Any) -> Any:
        self.count(1)
        failure = self.failing.get(node)
        if failure == "refused":  # as the bounded client reports a refused connection
            refused = ConnectionRefusedError(111, "Connect call failed")
            raise kerr.NodeNotReadyError(f"broker {node}: {refused}") from refused
        if failure == "hung":
            await asyncio.Event().wait()  # never answers
        if isinstance(request, MetadataRequest):
            return self._metadata()
        if isinstance(request, ListGroupsRequest):
            if failure == "error code":
                return _roundtrip(ListGroupsResponse_v0(14, []))  # coordinator load in progress
            mine = [(g, "consumer") for g, n in self.coordinators.items() if n == node]
            return _roundtrip(ListGroupsResponse_v0(0, mine))
        if isinstance(request, DescribeGroups):
            described: list[tuple[Any, ...]] = [
                (0, g, "Empty", "consumer", "", []) for g in request._groups
            ]
            return _roundtrip(DescribeGroupsResponse_v0(described))
        if isinstance(request, OffsetFetchRequest):
            commits = COMMITS[request._consumer_group]
            fetched = [
                (t, [(p, commits.get((t, p), -1), "", 0) for p in ps])
                for t, ps in request._partitions or []
            ]
            return _roundtrip(OffsetFetchResponse_v3(0, fetched, 0))
        assert isinstance(request, OffsetRequest)
        topics = [
            (t, [(p, 0, -1, ENDS[(t, p)] if when == LATEST else 0) for p, when in ps])
            for t, ps in request._topics
        ]
        return _roundtrip(OffsetResponse_v1(topics))


def _roundtrip(response: Any) -> Any:
    """Encoded and decoded, so the probe sees what aiokafka hands it from the wire."""
    return type(response).decode(response.encode())


def _target() -> KafkaTarget:
    return KafkaTarget(
        name="c", bootstrap_servers="k1.internal:9092", interval=1, timeout=0.5, status_window=3
    )


async def _run(state: FakeCluster) -> tuple[ProbeResult, float]:
    """One run as the scheduler makes it: cancelled at the deadline. (result, seconds)"""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + state.target.timeout_s
    ctx: ProbeContext[KafkaState] = ProbeContext(state, deadline, lambda: float(next(state.clock)))
    async with asyncio.timeout_at(deadline):
        r = await probe(state.target, ctx)
    return r, loop.time() - start


def _values(r: ProbeResult, family: object) -> dict[tuple[str, ...], float]:
    return {s.labels: s.value for s in r.samples if isinstance(s, Sample) and s.family is family}


def _status(r: ProbeResult, group: str) -> str | None:
    on = [k[2] for k, v in _values(r, M.GROUP_STATUS).items() if k[1] == group and v == 1]
    return on[0] if on else None


class _Lines(logging.Handler):
    """The exporter's log records as (level, message, fields)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str, dict[str, Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage(), getattr(record, "fields", {})))


@pytest.fixture
def logged() -> Iterator[list[tuple[int, str, dict[str, Any]]]]:
    handler, logger = _Lines(), logging.getLogger("exporter")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("failure", ["refused", "hung", "error code"])
async def test_one_failed_broker_leaves_the_others_read_and_its_groups_windows_kept(
    failure: Failure, logged: list[tuple[int, str, dict[str, Any]]]
) -> None:
    """Broker 2 (coordinator of b, leader of t/1) fails from the second cycle on."""
    state = FakeCluster(_target())
    r, _ = await _run(state)
    assert _values(r, M.BROKER_REACHABLE) == {("c", "1"): 1, ("c", "2"): 1, ("c", "3"): 1}
    assert _status(r, "b") == "ok"  # one point: not a full window yet
    first_seen = _values(r, M.GROUP_ADVANCED)[("c", "b")]
    b_windows = {k: copy.copy(h) for k, h in state.histories["b"].items()}

    state.failing[2] = failure
    r, seconds = await _run(state)
    assert seconds < state.target.timeout_s
    assert _values(r, M.BROKER_REACHABLE) == {("c", "1"): 1, ("c", "2"): 0, ("c", "3"): 1}
    # a (on broker 1): read, except t/1, whose leader is broker 2; its topic t is partial
    assert _values(r, M.LAG) == {
        ("c", "a", "t", "0"): 0,
        ("c", "a", "u", "0"): 0,
        ("c", "c", "u", "0"): 0,
    }
    assert set(_values(r, M.TOPIC_LAG)) == {("c", "a", "u"), ("c", "c", "u")}
    assert ("c", "t", "1") not in _values(r, M.PARTITION_END)
    assert ("c", "t") not in _values(r, M.TOPIC_END)
    assert _values(r, M.TOPIC_END)[("c", "u")] == 5
    # b (on broker 2) is unknown this cycle: no series, windows and discovery kept
    assert all(k[1] != "b" for k in _values(r, M.GROUP_STATE))
    assert state.histories["b"] == b_windows  # every count and age as it was
    assert "b" in state.discovery and ("b", "t") in state.drains
    assert _values(r, M.FETCH_ERRORS) == {("c",): 0}  # nothing sent to broker 2 for b
    warnings = [f for level, _, f in logged if level == logging.WARNING]
    assert [f["broker_id"] for f in warnings] == [2]
    # the first request broker 2 failed: ListGroups, or Metadata if it was asked first
    assert warnings[0]["error"].split(":")[0] in ("Metadata", "ListGroups")

    r, _ = await _run(state)  # still failing: no second WARNING
    assert len([x for x in logged if x[0] == logging.WARNING]) == 1
    assert _values(r, M.BROKER_REACHABLE)[("c", "2")] == 0

    del state.failing[2]
    r, _ = await _run(state)
    assert [msg for level, msg, _ in logged if level == logging.INFO] == [
        "kafka broker reachable again"
    ]
    assert _values(r, M.BROKER_REACHABLE)[("c", "2")] == 1
    assert _status(r, "b") == "ok"  # two real points
    r, _ = await _run(state)
    # the third real point fills the window: stop, with no restart after the outage
    assert _status(r, "b") == "stop"
    assert state.histories["b"][("t", 0)].status(has_members=False) is Status.STOP
    assert _values(r, M.GROUP_ADVANCED)[("c", "b")] == first_seen  # never moved
    assert _values(r, M.LAG)[("c", "a", "t", "1")] == 0


async def test_group_not_listed_while_every_broker_answers_is_pruned() -> None:
    """The fake cluster again (Tansu has one broker): the unknown-vs-gone distinction."""
    state = FakeCluster(_target())
    await _run(state)
    state.failing[2] = "refused"
    del state.coordinators["c"]  # deleted on broker 3 while broker 2 is down
    await _run(state)
    assert "c" in state.histories  # it may have moved to broker 2: unknown, kept
    del state.failing[2]
    await _run(state)
    assert "c" not in state.histories and "c" not in state.discovery
    assert "b" in state.histories


@pytest.mark.parametrize(("failure", "reason"), [("refused", "refused"), ("hung", "timeout")])
async def test_every_broker_failing_fails_the_run(failure: Failure, reason: str) -> None:
    """The fake cluster with all three brokers failing (the real single-broker outage
    is in ``test_kafka.py``): the run fails, before the deadline, as before."""
    state = FakeCluster(_target())
    await _run(state)
    state.failing = dict.fromkeys((1, 2, 3), failure)
    start = asyncio.get_running_loop().time()
    with pytest.raises(ProbeError) as raised:
        await _run(state)
    assert raised.value.reason == reason
    assert asyncio.get_running_loop().time() - start < state.target.timeout_s
    assert "no broker answered" in str(raised.value)


async def test_every_broker_failing_after_the_metadata_fails_the_run() -> None:
    """The fake cluster (Tansu has one broker): Metadata answers, then every broker
    answers ListGroups with an error code: no broker answered the cycle."""
    state = FakeCluster(_target())
    state.failing = dict.fromkeys((1, 2, 3), "error code")
    with pytest.raises(ProbeError) as raised:
        await _run(state)
    assert raised.value.reason == "protocol"
    assert "ListGroups: GroupLoadInProgressError" in str(raised.value)
