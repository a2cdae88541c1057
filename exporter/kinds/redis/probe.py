"""Redis: round trip, role and replication, clients, memory, persistence,
keyspace, an opt-in canary write/read, heartbeat keys and streams; of one server
at a fixed address, or of the master a Sentinel group names (followed through
failovers). A Redis Cluster target reports the cluster's state and its nodes."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

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
from . import metrics as M
from . import sentinel as redis_sentinel
from .client import (
    bounded_client,
    classify,
)
from .config import DEFAULT_BUDGET, RedisTarget

_MS_THRESHOLD = 1e11  # a heartbeat value above this is in milliseconds


PEER_SHARE = 1 / 3
"""Of a run's deadline, what one Sentinel or cluster seed may take to answer."""


def _fixed(budget: ReadBudget) -> Callable[[], ReadBudget]:
    """A connection's budget getter that always gives ``budget``."""
    return lambda: budget


class RedisState(ProbeState):
    """Holds the target's clients (each with a small connection pool) across runs:
    the server's (for a Sentinel target: the current master's, replaced when it
    moves), and one per Sentinel or cluster seed."""

    def __init__(self, target: RedisTarget) -> None:
        self.target = target
        self.client: aioredis.Redis | None = None
        """The server's client; for a Sentinel target, the current master's."""
        if target.address is not None:
            self.client = self._client(target.address)
        self.peer_timeout = target.timeout_s * PEER_SHARE
        self.sentinel_budgets = [
            ReadBudget(redis_sentinel.SENTINEL_BUDGET) for _ in target.sentinels or ()
        ]
        self.sentinels = [
            self._peer_client(address, _fixed(budget))
            for address, budget in zip(target.sentinels or (), self.sentinel_budgets, strict=True)
        ]
        self.tracker = redis_sentinel.MasterTracker()
        limit = target.response_budget or DEFAULT_BUDGET
        self.seed_budgets = [ReadBudget(limit) for _ in target.cluster or ()]
        self.seeds = [
            self._peer_client(address, _fixed(budget))
            for address, budget in zip(target.cluster or (), self.seed_budgets, strict=True)
        ]
        self.seed_order = redis_cluster.SeedOrder(len(self.seeds))
        self.cluster_state: str | None = None
        """``fail`` while the cluster reports it (for the log), None while ok."""
        self._counter = itertools.count()
        self.canary_error: str | None = None
        """The canary's last reply error (masked text); None while it succeeds."""

    def _client(self, address: str) -> aioredis.Redis:
        t = self.target
        return bounded_client(
            lambda: self.budget,
            address,
            t.tls,
            db=t.db,
            username=t.username,
            password=t.password_value(),
            socket_connect_timeout=t.timeout_s,
            socket_timeout=t.timeout_s,
            retry=Retry(NoBackoff(), 1),  # one reconnect: a pooled socket may be stale
            max_connections=4,
            client_name="tradeops-exporter",
        )

    def _peer_client(self, address: str, budget: Callable[[], ReadBudget]) -> aioredis.Redis:
        """A Sentinel's or a cluster seed's client: answers within ``peer_timeout``,
        a reconnect for a stale socket but no second wait for a hung peer."""
        t = self.target
        return bounded_client(
            budget,
            address,
            t.tls,
            username=t.username,
            password=t.password_value(),
            socket_connect_timeout=t.timeout_s * PEER_SHARE,
            socket_timeout=t.timeout_s * PEER_SHARE,
            retry=Retry(NoBackoff(), 1, supported_errors=(rexc.ConnectionError,)),
            max_connections=2,
            client_name="tradeops-exporter",
        )

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
            old, self.client = self.client, self._client(address)
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

    def canary_token(self) -> str:
        """A value unique to this run."""
        return f"{time.time_ns()}-{next(self._counter)}"

    def note_canary(self, target: str, error: str | None) -> None:
        """Log the canary's reply errors once per episode (and per distinct error)."""
        who = {"kind": "redis", "target": target}
        messages = ("redis canary write failed", "redis canary recovered")
        log_change(self.canary_error, error, messages, who, error=error)
        self.canary_error = error

    async def aclose(self) -> None:
        clients = [*self.sentinels, *self.seeds]
        if self.client is not None:
            clients.append(self.client)
        await asyncio.gather(*(c.aclose() for c in clients))


def _num(info: dict[str, Any], key: str) -> float | None:
    value = info.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ok(info: dict[str, Any], key: str) -> bool | None:
    value = info.get(key)
    return None if value is None else value == "ok"


def _server_series(r: ProbeResult, name: str, info: dict[str, Any], now: float) -> None:
    r.add(
        M.INFO,
        1,
        name,
        str(info.get("redis_version", "")),
        str(info.get("role", "")),
        str(info.get("redis_mode", "")),
    )
    uptime = _num(info, "uptime_in_seconds")
    r.add(M.START_TIME, None if uptime is None else round(now - uptime), name)
    plain = {
        M.CLIENTS: "connected_clients",
        M.BLOCKED_CLIENTS: "blocked_clients",
        M.MAX_CLIENTS: "maxclients",
        M.REJECTED_CONNECTIONS: "rejected_connections",
        M.CONNECTIONS_RECEIVED: "total_connections_received",
        M.COMMANDS: "total_commands_processed",
        M.MEMORY_USED: "used_memory",
        M.MEMORY_RSS: "used_memory_rss",
        M.MEMORY_MAX: "maxmemory",
        M.FRAGMENTATION: "mem_fragmentation_ratio",
        M.EVICTED: "evicted_keys",
        M.EXPIRED: "expired_keys",
        M.HITS: "keyspace_hits",
        M.MISSES: "keyspace_misses",
        M.RDB_LAST_SAVE: "rdb_last_save_time",
        M.RDB_CHANGES: "rdb_changes_since_last_save",
        M.RDB_IN_PROGRESS: "rdb_bgsave_in_progress",
        M.AOF_ENABLED: "aof_enabled",
        M.REPLICATION_OFFSET: "master_repl_offset",
    }
    for fam, key in plain.items():
        r.add(fam, _num(info, key), name)
    r.add(M.RDB_LAST_OK, _ok(info, "rdb_last_bgsave_status"), name)
    if info.get("aof_enabled") == 1:
        r.add(M.AOF_LAST_WRITE_OK, _ok(info, "aof_last_write_status"), name)
        r.add(M.AOF_LAST_REWRITE_OK, _ok(info, "aof_last_bgrewrite_status"), name)
    for db in range(16):
        stats = info.get(f"db{db}")
        if isinstance(stats, dict):
            r.add(M.DB_KEYS, stats.get("keys"), name, str(db))
            r.add(M.DB_EXPIRING, stats.get("expires"), name, str(db))


def _replication_series(r: ProbeResult, name: str, info: dict[str, Any]) -> None:
    role = info.get("role")
    r.add(M.ROLE_PRIMARY, role == "master", name)
    if role == "master":
        replicas = int(_num(info, "connected_slaves") or 0)
        r.add(M.CONNECTED_REPLICAS, replicas, name)
        offsets = [
            float(s["offset"])
            for i in range(replicas)
            if isinstance(s := info.get(f"slave{i}"), dict) and "offset" in s
        ]
        master = _num(info, "master_repl_offset")
        if offsets and master is not None:
            r.add(M.REPLICATION_LAG, max(0.0, master - min(offsets)), name)
    elif role == "slave":
        r.add(M.REPLICATION_LINK_UP, info.get("master_link_status") == "up", name)
        last_io = _num(info, "master_last_io_seconds_ago")
        r.add(M.REPLICATION_LAST_IO, None if last_io is None or last_io < 0 else last_io, name)
        r.add(M.SYNC_IN_PROGRESS, _num(info, "master_sync_in_progress"), name)


def parse_heartbeat(raw: bytes | str | None) -> float | None:
    """A Unix timestamp in seconds (or milliseconds) as text; None if unparseable."""
    if raw is None:
        return None
    try:
        value = float(raw.decode() if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if value != value or value <= 0:
        return None
    return value / 1000.0 if value > _MS_THRESHOLD else value


def _stream_id_seconds(entry_id: bytes | str | None) -> float | None:
    if not entry_id:
        return None
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, _ = text.partition("-")
    return int(ms) / 1000.0 if ms.isdigit() and int(ms) > 0 else None


async def _keys_series(r: ProbeResult, target: RedisTarget, client: aioredis.Redis) -> None:
    if not target.heartbeats and not target.streams:
        return
    pipe = client.pipeline(transaction=False)
    for hb in target.heartbeats:
        if hb.field is None:
            pipe.get(hb.key)
        else:
            pipe.hget(hb.key, hb.field)
    for st in target.streams:
        pipe.xlen(st.key)
        pipe.xinfo_stream(st.key)
        pipe.xinfo_groups(st.key)
    replies = await pipe.execute(raise_on_error=False)
    name = target.name
    for hb, raw in zip(target.heartbeats, replies, strict=False):
        ts = None if isinstance(raw, Exception) else parse_heartbeat(raw)
        r.add(M.HEARTBEAT_PRESENT, ts is not None, name, hb.name)
        r.add(M.HEARTBEAT_TIME, ts, name, hb.name)
        r.add(M.HEARTBEAT_MAX_GAP, hb.max_gap, name, hb.name, hb.calendar or target.calendar)
    stream_replies = replies[len(target.heartbeats) :]
    for i, st in enumerate(target.streams):
        length, info, groups = stream_replies[3 * i : 3 * i + 3]
        if isinstance(length, Exception):
            continue  # the key holds another type: nothing to report for it
        r.add(M.STREAM_LENGTH, length, name, st.name)
        if isinstance(info, dict):
            r.add(
                M.STREAM_LAST_ENTRY,
                _stream_id_seconds(info.get("last-generated-id")),
                name,
                st.name,
            )
        if isinstance(groups, list):
            for g in groups:
                raw_name = g["name"]
                group = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
                labels = (name, st.name, group)
                r.add(M.STREAM_GROUP_PENDING, g.get("pending"), *labels)
                r.add(M.STREAM_GROUP_CONSUMERS, g.get("consumers"), *labels)
                r.add(M.STREAM_GROUP_LAG, g.get("lag"), *labels)


async def _canary(
    r: ProbeResult, target: RedisTarget, state: RedisState, client: aioredis.Redis
) -> None:
    """SET and GET the canary key. A reply error (a read-only replica after a
    failover, OOM under ``noeviction``, an ACL without write rights) is the
    canary's failure, not the target's: success 0, no round trip, the run goes on.
    Connection errors and timeouts still fail the run."""
    assert target.canary is not None
    key = target.canary.key or f"tradeops:canary:{target.name}"
    token = state.canary_token()
    start = time.perf_counter()
    try:
        await client.set(key, token, px=int(target.canary.ttl * 1000))
        back = await client.get(key)
    except rexc.ResponseError as exc:
        state.note_canary(target.name, error_text(exc))
        r.add(M.CANARY_OK, False, target.name)
        return
    state.note_canary(target.name, None)
    r.add(M.CANARY_ROUNDTRIP, time.perf_counter() - start, target.name)
    if isinstance(back, bytes):
        back = back.decode(errors="replace")
    r.add(M.CANARY_OK, back == token, target.name)


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
    _server_series(r, target.name, info, now)
    _replication_series(r, target.name, info)
    await _keys_series(r, target, client)
    if target.canary is not None:
        await _canary(r, target, state, client)


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
