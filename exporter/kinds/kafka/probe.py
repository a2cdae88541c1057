"""Kafka: consumer-group offset lag, time lag, status and time to drain, per cluster.

One cycle costs O(brokers + groups) requests, whatever the partition count:
one Metadata (``cluster``), one ListGroups per broker and one DescribeGroups per
coordinator for all its groups (``groups``), one OffsetFetch per group (explicit
partitions, bounded concurrency) and two ListOffsets (latest, earliest) per leader
broker (``offsets``). The memory kept across cycles is in ``windows``, the pure
arithmetic (interpolation table, status, drain) in ``lag``, the series in ``series``.

Each request to a broker runs under its own deadline (see ``reach.Reach``); a broker
that fails one (connection error, timeout, an error code for the whole request)
is not asked again this cycle and is reported unreachable, and the cycle goes on
with what the other brokers answered. The run fails only when every broker failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

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
from .client import BoundedClient, classify, describe
from .cluster import metadata
from .config import KafkaTarget
from .connection import settings
from .frames import frame_limit
from .groups import describe_groups, list_groups
from .lag import DrainHistory, OffsetTable, PartitionHistory
from .offsets import Discovery, LogOffsets, PartitionKey, fetch_committed, list_offsets
from .reach import Reach, requests_end
from .series import cluster_series, collector_paused, group_series, topic_series
from .windows import prune, remember_ends


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
        self.tables: dict[PartitionKey, OffsetTable] = {}
        self.keys: dict[PartitionKey, PartitionKey] = {}
        """One (topic, partition) tuple per partition of the metadata, shared by the
        groups' answers and windows (100,000 windows on a large cluster)."""
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
        return settings(self.target, self.ssl_context, self.target.timeout_s)

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
            bootstrap_servers=self.target.servers(),
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


async def probe(target: KafkaTarget, ctx: ProbeContext[KafkaState]) -> ProbeResult:
    """Probe one Kafka cluster."""
    st = ctx.state
    st.requests = 0
    st.bootstrap_until = requests_end(ctx.deadline, target.timeout_s)
    await st.connect()
    reach = Reach(st.bootstrap_until)
    cluster = await metadata(st, target, reach)
    groups = await list_groups(st, target, cluster, reach)
    brokers = [b[0] for b in cluster.brokers]
    listed_by_all = not any(n in reach.failed for n in brokers)
    await describe_groups(st, groups, reach)
    fetched, failures = await fetch_committed(st, target, cluster, groups, ctx.now(), reach)
    ends, starts = await list_offsets(st, cluster, reach)
    if brokers and all(n in reach.failed for n in brokers):
        raise reach.error()
    st.note_brokers(target.name, brokers, reach.failed)
    offsets = LogOffsets(ends, starts, ctx.now())
    remember_ends(st, target, ends, offsets.at)

    r = ProbeResult()
    with collector_paused():
        cluster_series(r, target.name, cluster, len(groups), reach.failed)
        r.add(M.FETCH_ERRORS, failures, target.name)
        topic_series(r, target, cluster, ends, starts)
        prune(st, cluster, groups, fetched, listed_by_all)
        for group_name, group in groups.items():
            group_series(r, st, target, group_name, group, fetched.get(group_name), offsets)
        for group_name, (objective, calendar) in st.objectives_of(groups).items():
            r.add(M.GROUP_LAG_OBJECTIVE, objective, target.name, group_name, calendar)
    r.add(M.REQUESTS, st.requests, target.name)
    r.add(M.REQUESTS_TOTAL, st.requests_total, target.name)
    return r


RUNTIME: KindRuntime[KafkaTarget, KafkaState] = KindRuntime(probe, KafkaState, classify)
