"""Kafka: consumer-group offset lag, time lag, status and time to drain, per cluster.

One cycle costs O(brokers + groups) requests, whatever the partition count:
one Metadata, one ListGroups per broker, one DescribeGroups per coordinator
for all its groups, one OffsetFetch per group (explicit partitions, bounded
concurrency), and two ListOffsets (latest, earliest) per leader broker.
The pure arithmetic (interpolation table, status, drain) is in ``kafka_lag``.

Each request to a broker runs under its own deadline (see ``Reach``); a broker
that fails one (connection error, timeout, an error code for the whole request)
is not asked again this cycle and is reported unreachable, and the cycle goes on
with what the other brokers answered. The run fails only when every broker failed.
"""

from __future__ import annotations

import asyncio
import random
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
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
from aiokafka.protocol.commit import OffsetFetchRequest
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.offset import OffsetRequest

from ...logs import log_change
from ...probe import (
    KindRuntime,
    ProbeContext,
    ProbeError,
    ProbeResult,
    ProbeState,
    classify_error,
)
from . import metrics as M
from .client import BoundedClient, BrokersOnly, classify, describe, frame_limit
from .config import KafkaTarget
from .lag import DrainHistory, OffsetTable, PartitionHistory, Point, Status, Totals

LATEST, EARLIEST = -1, -2
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


# --- state ------------------------------------------------------------------------------

PartitionKey = tuple[str, int]


@dataclass(slots=True)
class Discovery:
    """What is known about which topics a group commits to."""

    topics: set[str] = field(default_factory=set)
    """Topics with at least one committed partition, or one answered with an error
    (asked again every cycle until it answers)."""
    checked: set[str] = field(default_factory=set)
    """Topics asked about since ``since``."""
    since: float = 0.0


class KafkaState(ProbeState):
    """The cluster client and the per-partition memory kept across runs."""

    def __init__(self, target: KafkaTarget) -> None:
        self.target = target
        self.ssl_context = target.tls.context() if target.tls is not None else None
        self.client: BoundedClient | None = None
        self.bootstrap_until: float | None = None
        """``loop.time()`` by which a bootstrap in this run must be done (set by the
        probe: the end of the run's requests, so a hung server is named in the error)."""
        self.requests = 0
        self.requests_total = 0
        self.tables: dict[tuple[str, int], OffsetTable] = {}
        self.histories: dict[str, dict[PartitionKey, PartitionHistory]] = {}
        """Status windows: group -> (topic, partition) -> window. Kept while the group is
        listed and the partition exists, across cycles that could not read it."""
        self.drains: dict[tuple[str, str], DrainHistory] = {}
        self.discovery: dict[str, Discovery] = {}
        self.unreachable: dict[int, str] = {}
        """Brokers that failed a request in the last successful run, with the error."""
        self.objectives: dict[str, tuple[float, str]] = {}
        """Group -> its resolved lag objective and calendar (the regexes are matched
        once per group name, not once per cycle); listed groups only."""

    def objectives_of(self, groups: Iterable[str]) -> dict[str, tuple[float, str]]:
        """Each group's (objective, calendar), from the cache; the cache keeps only
        ``groups`` afterwards."""
        known = self.objectives
        self.objectives = {g: known.get(g) or self.target.lag_objective(g) for g in groups}
        return self.objectives

    def note_brokers(self, target: str, brokers: Sequence[int], failed: dict[int, str]) -> None:
        """Log broker reachability changes once: WARNING when a broker in the metadata
        starts failing (its errors, which name timings, are not compared), DEBUG while
        it keeps failing, INFO when it answers again."""
        messages = ("kafka broker unreachable", "kafka broker reachable again")
        for node in brokers:
            who = {"kind": "kafka", "target": target, "broker_id": node}
            was, now = node in self.unreachable, node in failed
            log_change(was or None, now or None, messages, who, error=failed.get(node))
        self.unreachable = {n: failed[n] for n in brokers if n in failed}

    def _settings(self) -> dict[str, Any]:
        """The client's connection settings (security, timeouts)."""
        t = self.target
        settings: dict[str, Any] = {
            "client_id": t.client_id,
            "request_timeout_ms": int(t.timeout_s * 1000),
            "security_protocol": "PLAINTEXT",
        }
        if t.sasl is not None:
            settings.update(
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=t.sasl.mechanism,
                sasl_plain_username=t.sasl.username,
                sasl_plain_password=t.sasl.password_value(),
            )
        if self.ssl_context is not None:
            protocol = "SASL_SSL" if t.sasl is not None else "SSL"
            settings.update(security_protocol=protocol, ssl_context=self.ssl_context)
        return settings

    async def connect(self) -> BoundedClient:
        """The client, bootstrapped on first use (and again after a failed bootstrap).

        Its connections charge the run's budget (``state.budget``, set by the
        scheduler before the run: the client is built inside one) and refuse a
        frame larger than ``frame_limit`` before reading it.
        """
        if self.client is not None:
            return self.client
        client = BoundedClient(
            budget=self.budget,
            background_metadata=False,  # the probe fetches the metadata every cycle
            bootstrap_servers=self.target.bootstrap_servers.split(","),
            metadata_max_age_ms=24 * 3600 * 1000,  # the probe fetches metadata itself
            **self._settings(),
        )
        client.bootstrap_until = self.bootstrap_until
        self.count(1)
        try:
            await client.bootstrap()
        except Exception as exc:
            await client.close()
            cause = exc.__cause__ or exc  # the last bootstrap server's failure
            reason = classify_error(exc, classify)
            raise ProbeError(reason, f"bootstrap failed: {describe(cause)}") from exc
        except BaseException:
            await client.close()
            raise
        self.client = client
        return client

    def frame_limit(self) -> int:
        """The largest response frame a connection reads under this run's budget."""
        return frame_limit(self.budget)

    def count(self, n: int) -> None:
        """Account for ``n`` broker requests."""
        self.requests += n
        self.requests_total += n

    async def send(self, node: int, request: Any) -> Any:
        """Send one request to one broker, counted."""
        assert self.client is not None
        self.count(1)
        return await self.client.send(node, request)

    async def aclose(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.close()


# --- one cycle ----------------------------------------------------------------------------


@dataclass(slots=True)
class Cluster:
    """What one Metadata response says, restricted to the filtered topics."""

    brokers: list[tuple[int, str, int, str | None]]
    controller: int
    partitions: dict[str, dict[int, int]]
    """topic -> partition -> leader (-1 when none)."""
    offline: int = 0
    under_replicated: int = 0


@dataclass(slots=True)
class Group:
    """One listed group and what DescribeGroups said about it."""

    coordinator: int
    state: str = "unknown"
    members: int | None = None
    assigned: set[str] = field(default_factory=set)


PHASES = 5
"""Metadata, ListGroups, DescribeGroups, OffsetFetch, ListOffsets: in this order."""
PARSE_INLINE_TOPICS = 1000
"""A Metadata answer with more topics is read into a ``Cluster`` in a worker thread."""


def _requests_end(deadline: float, timeout: float) -> float:
    """When the cycle's requests must be done: a tenth of the timeout before the run's
    deadline, left for building the series and reporting brokers that did not answer."""
    return deadline - timeout * 0.1


@dataclass(slots=True)
class Reach:
    """One cycle's time budget for requests and the brokers that failed one.

    Each request of a phase (one request kind sent to several brokers) may wait for an
    equal share of the time left with the phases after it, so a hung broker costs each
    phase at most its share and the healthy brokers' later phases still run; a phase
    of many healthy requests (OffsetFetch on a large cluster) may run until ``end``.
    """

    end: float
    """``loop.time()`` by which every request is done (see ``_requests_end``)."""
    failed: dict[int, str] = field(default_factory=dict)
    """Broker id -> what failed (masked); a failed broker is not asked again this cycle."""
    errors: dict[int, BaseException] = field(default_factory=dict)
    """Broker id -> the exception of its first failure."""

    def share(self, phases_left: int) -> float:
        """Seconds one request of a phase followed by ``phases_left - 1`` others may wait."""
        return max(0.0, self.end - asyncio.get_running_loop().time()) / max(1, phases_left)

    def fail(self, node: int, what: str, exc: BaseException, detail: str | None = None) -> None:
        """Note that ``node`` failed ``what`` (the first failure per broker is kept)."""
        if node not in self.failed:
            self.failed[node] = f"{what}: {detail or describe(exc)}"
            self.errors[node] = exc

    def error(self) -> ProbeError:
        """The run's error once no broker answered, with the reason of the broker with
        the lowest id: brokers are asked in random order, and brokers failing for
        different reasons must still give one reason on every run."""
        first = self.errors.get(min(self.errors)) if self.errors else None
        reason = classify_error(first, classify) if first is not None else "protocol"
        detail = "; ".join(f"broker {n}: {e}" for n, e in sorted(self.failed.items()))
        return ProbeError(reason, f"no broker answered: {detail}")


async def _ask(
    st: KafkaState, reach: Reach, node: int, request: Any, wait: float, what: str
) -> Any:
    """``request``'s answer from ``node`` within ``wait`` seconds (and by ``reach.end``),
    or None when it failed (the broker is then noted as failed) or was not sent (the
    broker failed before, no time left)."""
    loop = asyncio.get_running_loop()
    until = min(reach.end, loop.time() + wait)
    seconds = until - loop.time()
    if node in reach.failed or seconds <= 0:
        return None
    try:
        async with asyncio.timeout_at(until):
            return await st.send(node, request)
    except TimeoutError as exc:
        reach.fail(node, what, exc, f"no answer within {seconds:.2f}s")
    except (kerr.KafkaError, OSError) as exc:
        reach.fail(node, what, exc)
    return None


async def _metadata(st: KafkaState, target: KafkaTarget, reach: Reach) -> Cluster:
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
        response = await _ask(st, reach, node, MetadataRequest(None), wait, "Metadata")
        if response is not None:
            break
    else:
        # No known broker answers: bootstrap afresh next time, in case the
        # cluster came back on other broker ids behind the same addresses.
        await st.aclose()
        raise reach.error()
    client.cluster.update_metadata(BrokersOnly(response))
    if len(response.topics) > PARSE_INLINE_TOPICS:  # keep the loop (and /metrics) free
        return await asyncio.to_thread(_parse_metadata, response, target)
    return _parse_metadata(response, target)


def _parse_metadata(response: Any, target: KafkaTarget) -> Cluster:
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


async def _list_groups(
    st: KafkaState, target: KafkaTarget, cluster: Cluster, reach: Reach
) -> dict[str, Group]:
    """The filtered groups listed by the brokers that answered ListGroups."""
    nodes = [b[0] for b in cluster.brokers]
    wait = reach.share(PHASES - 1)
    responses = await asyncio.gather(
        *(_ask(st, reach, n, ListGroupsRequest(), wait, "ListGroups") for n in nodes)
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


async def _describe(st: KafkaState, groups: dict[str, Group], reach: Reach) -> None:
    """Fill in state, members and assigned topics; a group whose coordinator does not
    answer keeps state ``unknown`` and an unknown member count."""
    by_node: dict[int, list[str]] = defaultdict(list)
    for name, g in groups.items():
        by_node[g.coordinator].append(name)
    nodes = list(by_node)
    wait = reach.share(PHASES - 2)
    responses = await asyncio.gather(
        *(_ask(st, reach, n, DescribeGroups(by_node[n]), wait, "DescribeGroups") for n in nodes)
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


@dataclass(frozen=True, slots=True)
class Fetched:
    """One group's OffsetFetch answer, by partition."""

    committed: dict[PartitionKey, int] = field(default_factory=dict)
    failed: frozenset[PartitionKey] = frozenset()
    """Answered with an error code: whether the group committed is unknown."""
    asked: frozenset[str] = frozenset()
    """The topics asked about (every partition of each)."""

    def uncommitted(self, key: PartitionKey) -> bool:
        """Asked, and answered without an error and without a commit (or left out)."""
        return key[0] in self.asked and key not in self.committed and key not in self.failed


def _read_offset_fetch(response: Any, asked: Iterable[str]) -> Fetched:
    """Split an OffsetFetch answer (without a group-level error) by partition; the
    partitions without a commit are implied, not listed (there can be many)."""
    committed: dict[PartitionKey, int] = {}
    failed: set[PartitionKey] = set()
    for topic, partitions in response.topics:
        for partition, offset, _meta, error in partitions:
            if error:
                failed.add((topic, partition))
            elif offset >= 0:
                committed[(topic, partition)] = offset
    return Fetched(committed, frozenset(failed), frozenset(asked))


def _topics_to_ask(
    st: KafkaState, target: KafkaTarget, name: str, group: Group, topics: set[str], now: float
) -> tuple[set[str], bool]:
    d = st.discovery.setdefault(name, Discovery())
    spread = 1.0 + (zlib.crc32(name.encode()) % 1000) / 1000.0
    full = not d.checked or now - d.since >= target.rediscover_interval * spread
    if full:
        return set(topics), True
    return (d.topics | group.assigned | (topics - d.checked)) & topics, False


async def _fetch_committed(
    st: KafkaState,
    target: KafkaTarget,
    cluster: Cluster,
    groups: dict[str, Group],
    now: float,
    reach: Reach,
) -> tuple[dict[str, Fetched], int]:
    """Each readable group's answer (a group whose request failed as a whole, or was
    not sent, is missing) and the errors: one per group whose request failed as a
    whole or whose turn came after the cycle's time ran out, one per partition answered
    with an error code. A group whose coordinator already failed this cycle is not
    asked and not counted (the broker is reported unreachable)."""
    topics = set(cluster.partitions)
    limit = asyncio.Semaphore(target.max_concurrent_requests)
    fetched: dict[str, Fetched] = {}
    failures = 0
    wait = reach.share(PHASES - 3)
    loop = asyncio.get_running_loop()

    async def one(name: str, group: Group) -> None:
        nonlocal failures
        if group.coordinator in reach.failed:
            return
        ask, full = _topics_to_ask(st, target, name, group, topics, now)
        d = st.discovery[name]
        if full:
            d.checked, d.since = set(), now
        if not ask:
            fetched[name] = Fetched()
            return
        asked = [(t, sorted(cluster.partitions[t])) for t in sorted(ask)]
        async with limit:
            if group.coordinator in reach.failed:
                return
            if loop.time() >= reach.end:  # the cycle's time ran out before this group's turn
                failures += 1
                return
            request = OffsetFetchRequest(name, asked)
            response = await _ask(st, reach, group.coordinator, request, wait, "OffsetFetch")
        code: int = -1 if response is None else getattr(response, "error_code", 0)
        if code:
            failures += 1
            return
        got = fetched[name] = _read_offset_fetch(response, ask)
        failures += len(got.failed)
        d.topics = (d.topics - ask) | {t for t, _ in got.committed} | {t for t, _ in got.failed}
        d.checked |= ask

    await asyncio.gather(*(one(n, g) for n, g in groups.items()))
    return fetched, failures


async def _list_offsets(
    st: KafkaState, cluster: Cluster, reach: Reach
) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    """(log-end offsets, log-start offsets), asked of each partition's leader; a leader
    that fails either request (or failed before) gives neither for its partitions."""
    by_leader: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for topic, leaders in cluster.partitions.items():
        for partition, leader in leaders.items():
            if leader >= 0:
                by_leader[leader][topic].append(partition)

    wait = reach.share(PHASES - 4)

    async def ask(leader: int, when: int) -> dict[tuple[str, int], int] | None:
        topics = [(t, [(p, when) for p in ps]) for t, ps in by_leader[leader].items()]
        response = await _ask(st, reach, leader, OffsetRequest(-1, 0, topics), wait, "ListOffsets")
        if response is None:
            return None
        out: dict[tuple[str, int], int] = {}
        for topic, partitions in response.topics:
            for entry in partitions:
                partition, error = entry[0], entry[1]
                offset = entry[3] if len(entry) > 3 else (entry[2][0] if entry[2] else -1)
                if not error and offset >= 0:
                    out[(topic, partition)] = offset
        return out

    nodes = list(by_leader)
    results = await asyncio.gather(
        *(ask(n, LATEST) for n in nodes), *(ask(n, EARLIEST) for n in nodes)
    )
    ends: dict[tuple[str, int], int] = {}
    starts: dict[tuple[str, int], int] = {}
    for node, end, start in zip(nodes, results[: len(nodes)], results[len(nodes) :], strict=True):
        if node not in reach.failed and end is not None and start is not None:
            ends.update(end)
            starts.update(start)
    return ends, starts


# --- samples -------------------------------------------------------------------------------


def _cluster_series(
    r: ProbeResult, name: str, cluster: Cluster, groups: int, failed: dict[int, str]
) -> None:
    r.add(M.BROKERS, len(cluster.brokers), name)
    for node, host, port, rack in cluster.brokers:
        r.add(M.BROKER_INFO, 1, name, str(node), f"{host}:{port}", rack or "")
        r.add(M.BROKER_REACHABLE, node not in failed, name, str(node))
    r.add(M.CONTROLLER, cluster.controller, name)
    r.add(M.TOPICS, len(cluster.partitions), name)
    r.add(M.PARTITIONS, sum(len(p) for p in cluster.partitions.values()), name)
    r.add(M.OFFLINE, cluster.offline, name)
    r.add(M.UNDER_REPLICATED, cluster.under_replicated, name)
    r.add(M.GROUPS, groups, name)


def _topic_series(
    r: ProbeResult,
    target: KafkaTarget,
    cluster: Cluster,
    ends: dict[tuple[str, int], int],
    starts: dict[tuple[str, int], int],
) -> None:
    name = target.name
    per_partition = target.granularity == "partition"
    for topic, leaders in cluster.partitions.items():
        r.add(M.TOPIC_PARTITIONS, len(leaders), name, topic)
        end_sum: int | None = 0
        retained: int | None = 0  # each None once a partition lacks its offset: no partial sums
        for partition in leaders:
            end, start = ends.get((topic, partition)), starts.get((topic, partition))
            end_sum = None if end is None or end_sum is None else end_sum + end
            if end is None or start is None or retained is None:
                retained = None
            else:
                retained += end - start
            if per_partition and end is not None:
                r.add(M.PARTITION_END, end, name, topic, str(partition))
                r.add(M.PARTITION_START, start, name, topic, str(partition))
        r.add(M.TOPIC_END, end_sum, name, topic)
        r.add(M.TOPIC_RETAINED, retained, name, topic)


@dataclass(frozen=True, slots=True)
class LogOffsets:
    """Log-end and log-start offsets of this cycle, and when they were read."""

    ends: dict[tuple[str, int], int]
    starts: dict[tuple[str, int], int]
    at: float


@dataclass(slots=True)
class _TopicAgg:
    lag: int = 0
    max_seconds: float | None = None
    lower_bound: bool = False
    committed: int = 0
    end: int = 0
    partitions: int = 0
    expired: int = 0


def _window(st: KafkaState, target: KafkaTarget, group: str, key: PartitionKey) -> PartitionHistory:
    """The status window of one group partition, created on first use."""
    windows = st.histories.setdefault(group, {})
    history = windows.get(key)
    if history is None:
        history = windows[key] = PartitionHistory(target.status_window)
    return history


def _group_series(
    r: ProbeResult,
    st: KafkaState,
    target: KafkaTarget,
    group_name: str,
    group: Group,
    fetched: Fetched | None,
    log: LogOffsets,
) -> None:
    """Emit one group's series and add this cycle's points to its windows.

    A partition read this cycle (committed offset and log-end offset) gets a point and
    its series. One that could not be read (the group's OffsetFetch failed, the partition
    was answered with an error or has no log-end offset) gets neither: its window is kept
    as it is (see ``_prune``), its series are absent, and so are the aggregates of its
    topic, which would be partial. Group-level series cover the partitions read.
    """
    name, ends, now = target.name, log.ends, log.at
    for state in GROUP_STATES:
        r.add(M.GROUP_STATE, state == group.state, name, group_name, state)
    r.add(M.GROUP_MEMBERS, group.members, name, group_name)
    if fetched is None:
        return
    has_members = bool(group.members)  # unknown counts as none: STALL needs evidence
    per_partition = target.granularity == "partition"
    read: set[PartitionKey] = set()
    topics: dict[str, _TopicAgg] = defaultdict(_TopicAgg)
    counts = dict.fromkeys(Status, 0)
    for (topic, partition), committed in fetched.committed.items():
        end = ends.get((topic, partition))
        if end is None:
            continue
        lag = max(0, end - committed)
        read.add((topic, partition))
        history = _window(st, target, group_name, (topic, partition))
        history.add(Point(now, committed, lag))
        counts[history.status(has_members)] += 1
        table = st.tables.get((topic, partition))
        estimate = table.time_lag(committed, now) if table is not None else None
        agg = topics[topic]
        agg.lag += lag
        agg.committed += committed
        agg.end += end
        agg.partitions += 1
        agg.expired += committed < log.starts.get((topic, partition), 0)
        if estimate is not None:
            seconds, lower = estimate
            if agg.max_seconds is None or seconds > agg.max_seconds:
                agg.max_seconds, agg.lower_bound = seconds, lower
        if per_partition:
            labels = (name, group_name, topic, str(partition))
            r.add(M.COMMITTED, committed, *labels)
            r.add(M.LAG, lag, *labels)
            r.add(M.LAG_SECONDS, estimate[0] if estimate else None, *labels)
    windows = st.histories.get(group_name, {})
    unread = (windows.keys() | fetched.committed.keys() | fetched.failed) - read
    incomplete = {t for t, _ in unread}
    complete = {t: a for t, a in topics.items() if t not in incomplete}
    _topic_aggregates(r, st, target, group_name, complete, now)
    if not read:
        return
    worst = max((s for s, n in counts.items() if n), default=Status.OK)
    for status in Status:
        r.add(M.GROUP_STATUS, status == worst, name, group_name, status.label)
        r.add(M.GROUP_PARTITIONS_STATUS, counts[status], name, group_name, status.label)
    r.add(M.GROUP_LAG, sum(a.lag for a in topics.values()), name, group_name)
    ages = [a.max_seconds for a in topics.values() if a.max_seconds is not None]
    r.add(M.GROUP_LAG_SECONDS, max(ages) if ages else None, name, group_name)
    # over every kept window, read this cycle or not: a real past observation each
    advanced = max(h.moved_at for h in windows.values())
    r.add(M.GROUP_ADVANCED, advanced, name, group_name)


def _topic_aggregates(
    r: ProbeResult,
    st: KafkaState,
    target: KafkaTarget,
    group_name: str,
    topics: dict[str, _TopicAgg],
    now: float,
) -> None:
    """Per-topic sums, time lag and drain; ``topics`` holds only the topics all of
    whose known partitions were read this cycle, so no partial point is added."""
    name = target.name
    for topic, agg in topics.items():
        labels = (name, group_name, topic)
        r.add(M.TOPIC_LAG, agg.lag, *labels)
        r.add(M.TOPIC_COMMITTED, agg.committed, *labels)
        r.add(M.TOPIC_EXPIRED, agg.expired, *labels)
        r.add(M.TOPIC_LAG_SECONDS, agg.max_seconds, *labels)
        if agg.max_seconds is not None:
            r.add(M.TOPIC_LOWER_BOUND, agg.lower_bound, *labels)
        drain = st.drains.get((group_name, topic))
        if drain is None:
            drain = st.drains[(group_name, topic)] = DrainHistory(target.status_window)
        drain.add(Totals(now, agg.partitions, agg.committed, agg.end))
        estimate = drain.estimate(agg.lag)
        if estimate is not None:
            r.add(M.DRAIN, estimate[0], *labels)
            r.add(M.DRAINING, estimate[1], *labels)


def _remember_ends(
    st: KafkaState, target: KafkaTarget, ends: dict[tuple[str, int], int], now: float
) -> None:
    for key, end in ends.items():
        table = st.tables.get(key)
        if table is None:
            table = st.tables[key] = OffsetTable(target.lag_table_size)
        table.add(end, now)


def _gone(key: PartitionKey, cluster: Cluster, fetched: Fetched | None) -> bool:
    """Whether a listed group's partition is known to be gone: the metadata no longer
    has it, or the group's OffsetFetch succeeded and holds no commit for it."""
    topic, partition = key
    if partition not in cluster.partitions.get(topic, {}):
        return True
    return fetched is not None and fetched.uncommitted(key)


def _prune(
    st: KafkaState,
    cluster: Cluster,
    groups: dict[str, Group],
    fetched: dict[str, Fetched],
    listed_by_all: bool = True,
) -> None:
    """Forget what is known to be gone, before this cycle's points are added.

    A group's windows and discovery go when ListGroups no longer lists it (or the filter
    drops it), in a cycle where every broker in the metadata answered ListGroups
    (``listed_by_all``); while one did not, an unlisted group may be coordinated there
    (or have moved there): it is unknown, not gone, and keeps them. A partition's window
    goes when ``_gone``. A group whose OffsetFetch failed, or a partition answered with
    an error or without a log-end offset, keeps its window unchanged: one unreadable
    cycle does not restart the status window.
    """
    for key in [k for k in st.tables if k[1] not in cluster.partitions.get(k[0], {})]:
        del st.tables[key]
    for name in list(st.histories):
        windows = st.histories[name]
        answer = fetched.get(name)
        unlisted = listed_by_all and name not in groups
        for key in [k for k in windows if unlisted or _gone(k, cluster, answer)]:
            del windows[key]
        if not windows:
            del st.histories[name]
    live = {(g, t) for g, windows in st.histories.items() for t, _ in windows}
    for gt in [k for k in st.drains if k not in live]:
        del st.drains[gt]
    if listed_by_all:
        for name in [n for n in st.discovery if n not in groups]:
            del st.discovery[name]


async def probe(target: KafkaTarget, ctx: ProbeContext[KafkaState]) -> ProbeResult:
    """Probe one Kafka cluster."""
    st = ctx.state
    st.requests = 0
    st.bootstrap_until = _requests_end(ctx.deadline, target.timeout_s)
    await st.connect()
    reach = Reach(st.bootstrap_until)
    cluster = await _metadata(st, target, reach)
    groups = await _list_groups(st, target, cluster, reach)
    brokers = [b[0] for b in cluster.brokers]
    listed_by_all = not any(n in reach.failed for n in brokers)
    await _describe(st, groups, reach)
    fetched, failures = await _fetch_committed(st, target, cluster, groups, ctx.now(), reach)
    ends, starts = await _list_offsets(st, cluster, reach)
    if brokers and all(n in reach.failed for n in brokers):
        raise reach.error()
    st.note_brokers(target.name, brokers, reach.failed)
    offsets = LogOffsets(ends, starts, ctx.now())
    _remember_ends(st, target, ends, offsets.at)

    r = ProbeResult()
    _cluster_series(r, target.name, cluster, len(groups), reach.failed)
    r.add(M.FETCH_ERRORS, failures, target.name)
    _topic_series(r, target, cluster, ends, starts)
    _prune(st, cluster, groups, fetched, listed_by_all)
    for group_name, group in groups.items():
        _group_series(r, st, target, group_name, group, fetched.get(group_name), offsets)
    for group_name, (objective, calendar) in st.objectives_of(groups).items():
        r.add(M.GROUP_LAG_OBJECTIVE, objective, target.name, group_name, calendar)
    r.add(M.REQUESTS, st.requests, target.name)
    r.add(M.REQUESTS_TOTAL, st.requests_total, target.name)
    return r


RUNTIME: KindRuntime[KafkaTarget, KafkaState] = KindRuntime(probe, KafkaState, classify)
