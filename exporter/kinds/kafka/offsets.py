"""Offsets: the groups' committed offsets (OffsetFetch, one request per group with
explicit partitions, bounded concurrency) and the partitions' log-end and log-start
offsets (two ListOffsets per leader broker)."""

from __future__ import annotations

import asyncio
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka.protocol.commit import OffsetFetchRequest
from aiokafka.protocol.offset import OffsetRequest

from .cluster import Cluster
from .config import KafkaTarget
from .groups import Group
from .reach import PHASES, Reach, Sender, ask

if TYPE_CHECKING:
    from .probe import KafkaState

LATEST, EARLIEST = -1, -2
PartitionKey = tuple[str, int]
Offsets = dict[PartitionKey, int]


@dataclass(slots=True)
class Discovery:
    """What is known about which topics a group commits to."""

    topics: set[str] = field(default_factory=set)
    """Topics with at least one committed partition, or one answered with an error
    (asked again every cycle until it answers)."""
    checked: set[str] = field(default_factory=set)
    """Topics asked about since ``since``."""
    since: float = 0.0


@dataclass(frozen=True, slots=True)
class Fetched:
    """One group's OffsetFetch answer, by partition."""

    committed: Offsets = field(default_factory=dict)
    failed: frozenset[PartitionKey] = frozenset()
    """Answered with an error code: whether the group committed is unknown."""
    asked: frozenset[str] = frozenset()
    """The topics asked about (every partition of each)."""

    def uncommitted(self, key: PartitionKey) -> bool:
        """Asked, and answered without an error and without a commit (or left out)."""
        return key[0] in self.asked and key not in self.committed and key not in self.failed


@dataclass(frozen=True, slots=True)
class LogOffsets:
    """Log-end and log-start offsets of this cycle, and when they were read."""

    ends: Offsets
    starts: Offsets
    at: float


def read_offset_fetch(
    response: Any, asked: Iterable[str], keys: dict[PartitionKey, PartitionKey] | None = None
) -> Fetched:
    """Split an OffsetFetch answer (without a group-level error) by partition; the
    partitions without a commit are implied, not listed (there can be many).

    ``keys`` holds one key tuple per partition, shared by every group's answer (and so
    by the status windows made from them); new partitions are added to it.
    """
    committed: Offsets = {}
    failed: set[PartitionKey] = set()
    shared = {} if keys is None else keys
    for topic, partitions in response.topics:
        for partition, offset, _meta, error in partitions:
            key = (topic, partition)
            if error:
                failed.add(key)
            elif offset >= 0:
                committed[shared.setdefault(key, key)] = offset
    return Fetched(committed, frozenset(failed), frozenset(asked))


def topics_to_ask(
    st: KafkaState, target: KafkaTarget, name: str, group: Group, topics: set[str], now: float
) -> tuple[set[str], bool]:
    """The topics to ask ``name`` about this cycle, and whether that is every topic (a
    rediscovery, every ``rediscover_interval`` spread per group); otherwise the topics
    it committed to, is assigned, or was not asked about yet."""
    d = st.discovery.setdefault(name, Discovery())
    spread = 1.0 + (zlib.crc32(name.encode()) % 1000) / 1000.0
    full = not d.checked or now - d.since >= target.rediscover_interval * spread
    if full:
        return set(topics), True
    return (d.topics | group.assigned | (topics - d.checked)) & topics, False


_NOT_SENT = object()


@dataclass(slots=True)
class _OffsetFetch:
    """One cycle's OffsetFetch phase: what every group's request shares, and the
    answers and errors collected."""

    st: KafkaState
    target: KafkaTarget
    cluster: Cluster
    reach: Reach
    now: float
    limit: asyncio.Semaphore
    wait: float
    topics: set[str] = field(init=False)
    fetched: dict[str, Fetched] = field(default_factory=dict)
    failures: int = 0

    def __post_init__(self) -> None:
        self.topics = set(self.cluster.partitions)

    async def group(self, name: str, group: Group) -> None:
        """Ask one group about the topics it may commit to, unless its coordinator
        failed this cycle; note its answer in the group's discovery."""
        if group.coordinator in self.reach.failed:
            return
        st = self.st
        ask_about, full = topics_to_ask(st, self.target, name, group, self.topics, self.now)
        d = st.discovery[name]
        if full:
            d.checked, d.since = set(), self.now
        if not ask_about:
            self.fetched[name] = Fetched()
            return
        response = await self._request(name, group, ask_about)
        if response is _NOT_SENT:
            return
        code: int = -1 if response is None else getattr(response, "error_code", 0)
        if code:
            self.failures += 1
            return
        got = self.fetched[name] = read_offset_fetch(response, ask_about, st.keys)
        self.failures += len(got.failed)
        answered = {t for t, _ in got.committed} | {t for t, _ in got.failed}
        d.topics = (d.topics - ask_about) | answered
        d.checked |= ask_about

    async def _request(self, name: str, group: Group, ask_about: set[str]) -> Any:
        """The group's answer about every partition of ``ask_about``; None when it
        failed or the cycle's time ran out before its turn, ``_NOT_SENT`` when its
        coordinator failed meanwhile (the broker's failure, not the group's)."""
        partitions = self.cluster.partitions
        asked = [(t, sorted(partitions[t])) for t in sorted(ask_about)]
        async with self.limit:
            if group.coordinator in self.reach.failed:
                return _NOT_SENT
            if asyncio.get_running_loop().time() >= self.reach.end:
                return None  # the cycle's time ran out before this group's turn
            request = OffsetFetchRequest(name, asked)
            node, wait = group.coordinator, self.wait
            return await ask(self.st, self.reach, node, request, wait, "OffsetFetch")


async def fetch_committed(
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
    limit = asyncio.Semaphore(target.max_concurrent_requests)
    phase = _OffsetFetch(st, target, cluster, reach, now, limit, reach.share(PHASES - 3))
    await asyncio.gather(*(phase.group(n, g) for n, g in groups.items()))
    return phase.fetched, phase.failures


def _by_leader(cluster: Cluster) -> dict[int, dict[str, list[int]]]:
    """Leader broker -> topic -> the partitions it leads."""
    by_leader: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for topic, leaders in cluster.partitions.items():
        for partition, leader in leaders.items():
            if leader >= 0:
                by_leader[leader][topic].append(partition)
    return by_leader


def _read_list_offsets(response: Any) -> Offsets:
    out: Offsets = {}
    for topic, partitions in response.topics:
        for entry in partitions:
            partition, error = entry[0], entry[1]
            offset = entry[3] if len(entry) > 3 else (entry[2][0] if entry[2] else -1)
            if not error and offset >= 0:
                out[(topic, partition)] = offset
    return out


async def list_offsets(st: Sender, cluster: Cluster, reach: Reach) -> tuple[Offsets, Offsets]:
    """(log-end offsets, log-start offsets), asked of each partition's leader; a leader
    that fails either request (or failed before) gives neither for its partitions."""
    by_leader = _by_leader(cluster)
    wait = reach.share(PHASES - 4)

    async def one(leader: int, when: int) -> Offsets | None:
        topics = [(t, [(p, when) for p in ps]) for t, ps in by_leader[leader].items()]
        request = OffsetRequest(-1, 0, topics)
        response = await ask(st, reach, leader, request, wait, "ListOffsets")
        return None if response is None else _read_list_offsets(response)

    nodes = list(by_leader)
    results = await asyncio.gather(
        *(one(n, LATEST) for n in nodes), *(one(n, EARLIEST) for n in nodes)
    )
    ends: Offsets = {}
    starts: Offsets = {}
    for node, end, start in zip(nodes, results[: len(nodes)], results[len(nodes) :], strict=True):
        if node not in reach.failed and end is not None and start is not None:
            ends.update(end)
            starts.update(start)
    return ends, starts
