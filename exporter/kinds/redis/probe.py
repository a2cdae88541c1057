"""Redis: round trip, role and replication, clients, memory, persistence,
keyspace, an opt-in canary write/read, heartbeat keys and streams; of one server
at a fixed address, or of the master a Sentinel group names (followed through
failovers). A Redis Cluster target reports the cluster's state and its nodes.

This module holds the target's state and the three modes' runs; the series come
from ``info``, ``keys``, ``canary``, ``sentinel`` and ``cluster``."""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis

from ...budget import ReadBudget
from ...logs import log, log_change
from ...probe import (
    KindRuntime,
    ProbeContext,
    ProbeError,
    ProbeResult,
    ProbeState,
    classify_error,
)
from ...redact import error_text
from . import cluster as redis_cluster
from . import info as redis_info
from . import metrics as M
from . import sentinel as redis_sentinel
from .canary import CanaryState, canary_series
from .client import PEER_SHARE, classify, peer_client, server_client
from .config import DEFAULT_BUDGET, RedisTarget
from .keys import keys_series


class RedisState(ProbeState):
    """Holds the target's clients (each with a small connection pool) across runs:
    the server's (for a Sentinel target: the current master's, replaced when it
    moves), and one per Sentinel or cluster seed, each with a budget of its own."""

    def __init__(self, target: RedisTarget) -> None:
        self.target = target
        self.client: aioredis.Redis | None = None
        """The server's client; for a Sentinel target, the current master's."""
        if target.address is not None:
            self.client = self._server(target.address)
        self.peer_timeout = target.timeout_s * PEER_SHARE
        sentinels = target.sentinels or []
        self.sentinel_budgets = [ReadBudget(redis_sentinel.SENTINEL_BUDGET) for _ in sentinels]
        self.sentinels = self._peers(sentinels, self.sentinel_budgets)
        self.tracker = redis_sentinel.MasterTracker()
        seeds = target.cluster or []
        self.seed_budgets = [ReadBudget(target.response_budget or DEFAULT_BUDGET) for _ in seeds]
        self.seeds = self._peers(seeds, self.seed_budgets)
        self.seed_order = redis_cluster.SeedOrder(len(self.seeds))
        self.cluster_state: str | None = None
        """``fail`` while the cluster reports it (for the log), None while ok."""
        self.canary = CanaryState(target.name)

    def _server(self, address: str) -> aioredis.Redis:
        return server_client(self.target, address, lambda: self.budget)

    def _peers(self, addresses: list[str], budgets: list[ReadBudget]) -> list[aioredis.Redis]:
        pairs = zip(addresses, budgets, strict=True)
        return [peer_client(self.target, address, budget) for address, budget in pairs]

    async def follow(self, address: str, now: float) -> aioredis.Redis:
        """The client of the master at ``address``; a new one when the master moved."""
        previous = self.tracker.follow(address, now)
        if previous is not None:
            log(
                logging.WARNING,
                "redis sentinel master changed",
                kind="redis",
                target=self.target.name,
                master=self.target.master,
                address=address,
                previous=previous,
            )
        if self.client is None or previous is not None:
            old, self.client = self.client, self._server(address)
            if old is not None:
                await old.aclose()
        return self.client

    def note_cluster(self, state: str | None) -> None:
        """Log the cluster's state once per change."""
        bad = None if state == "ok" else state
        who = {"kind": "redis", "target": self.target.name}
        messages = ("redis cluster state is not ok", "redis cluster state is ok")
        log_change(self.cluster_state, bad, messages, who, cluster_state=bad)
        self.cluster_state = bad

    async def aclose(self) -> None:
        """Close every client and its pool."""
        clients = [*self.sentinels, *self.seeds]
        if self.client is not None:
            clients.append(self.client)
        await asyncio.gather(*(c.aclose() for c in clients))


async def _server_probe(
    r: ProbeResult, target: RedisTarget, state: RedisState, client: aioredis.Redis, now: float
) -> None:
    """PING, INFO, the keys and the canary of one server."""
    start = time.perf_counter()
    if not await client.ping():
        raise ProbeError("protocol", "PING did not answer PONG")
    r.add(M.PING, time.perf_counter() - start, target.name)
    info = await client.info()
    if not isinstance(info, dict) or "redis_version" not in info:
        raise ProbeError("protocol", "INFO reply has no redis_version")
    redis_info.server_series(r, target.name, info, now)
    redis_info.replication_series(r, target.name, info)
    await keys_series(r, target, client)
    if target.canary is not None:
        await canary_series(r, target.canary, state.canary, client)


def _margin(target: RedisTarget) -> float:
    """How long before the run's deadline the master's part stops, so that the
    Sentinels' series survive a hung master as partial results."""
    return max(0.02, target.timeout_s * 0.1)


async def _sentinel_probe(target: RedisTarget, ctx: ProbeContext[RedisState]) -> ProbeResult:
    """Ask the Sentinels where the master is, follow it there and probe it."""
    state = ctx.state
    assert target.sentinels is not None and target.master is not None
    results = await redis_sentinel.ask_all(
        state.sentinels, state.sentinel_budgets, target.master, state.peer_timeout
    )
    answers = [a for a in results if isinstance(a, redis_sentinel.SentinelAnswer)]
    sentinels = ProbeResult()
    if not answers:
        redis_sentinel.series(sentinels, target.name, results, state.tracker)
        exc = redis_sentinel.failure(results, target.master)
        reason = classify_error(exc, classify)
        raise ProbeError(reason, f"no Sentinel answered: {error_text(exc)}", sentinels) from exc
    chosen = redis_sentinel.choose(answers)
    client = await state.follow(chosen.address, ctx.now())
    redis_sentinel.series(sentinels, target.name, results, state.tracker)
    r = ProbeResult(list(sentinels.samples))
    try:
        async with asyncio.timeout_at(ctx.deadline - _margin(target)):
            await _server_probe(r, target, state, client, ctx.now())
    except Exception as exc:
        reason = classify_error(exc, classify)
        message = f"master {chosen.address}: {error_text(exc)}"
        raise ProbeError(reason, message, sentinels) from exc
    return r


async def _cluster_probe(target: RedisTarget, ctx: ProbeContext[RedisState]) -> ProbeResult:
    """Ask a seed for the cluster's state and nodes."""
    state = ctx.state
    loop = asyncio.get_running_loop()
    info, nodes = await redis_cluster.ask_seeds(
        state.seeds,
        state.seed_budgets,
        state.seed_order,
        state.peer_timeout,
        lambda: ctx.deadline - loop.time(),
    )
    r = ProbeResult()
    redis_cluster.cluster_series(r, target.name, info)
    redis_cluster.node_series(r, target.name, nodes, target.max_nodes)
    state.note_cluster(info.get("cluster_state"))
    return r


async def probe(target: RedisTarget, ctx: ProbeContext[RedisState]) -> ProbeResult:
    """Probe one Redis server, the master its Sentinels name, or a cluster."""
    if target.sentinels is not None:
        return await _sentinel_probe(target, ctx)
    if target.cluster is not None:
        return await _cluster_probe(target, ctx)
    assert ctx.state.client is not None
    r = ProbeResult()
    await _server_probe(r, target, ctx.state, ctx.state.client, ctx.now())
    return r


RUNTIME: KindRuntime[RedisTarget, RedisState] = KindRuntime(probe, RedisState, classify)
