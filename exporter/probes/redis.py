"""Redis: round trip, role and replication, clients, memory, persistence,
keyspace, an opt-in canary write/read, heartbeat keys and streams; of one server
at a fixed address, or of the master a Sentinel group names (followed through
failovers). A Redis Cluster target reports the cluster's state and its nodes."""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import redis.asyncio as aioredis
import redis.exceptions as rexc
from pydantic import Field, ModelWrapValidatorHandler, ValidationError, model_validator
from pydantic_core import InitErrorDetails
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..budget import BoundedProtocol, ReadBudget
from ..catalogue import redis as M
from ..logs import log, log_change
from ..model import (
    Duration,
    HostPort,
    HostTLSConfig,
    Name,
    PasswordMixin,
    StrictModel,
    TargetBase,
    TLSConfig,
    parse_host_port,
)
from ..probe import (
    ProbeContext,
    ProbeError,
    ProbeKind,
    ProbeResult,
    ProbeState,
    Reason,
    classify_error,
)
from ..redact import error_text
from . import redis_cluster, redis_sentinel

_MS_THRESHOLD = 1e11  # a heartbeat value above this is in milliseconds
LINES_PER_TURN = 256
"""Reply lines parsed between two turns of the event loop (see ``ReplyReader``)."""


class HeartbeatKey(StrictModel):
    """A key (or hash field) where a platform component writes a Unix timestamp."""

    name: Name
    key: str = Field(min_length=1)
    field: str | None = None
    max_gap: Duration = 60.0
    """The longest acceptable silence between two writes (exported, for the rules)."""
    calendar: Name | None = None
    """The calendar the writer follows; defaults to the target's."""


class StreamKey(StrictModel):
    """A Redis stream whose length and consumer groups are reported."""

    name: Name
    key: str = Field(min_length=1)


class Canary(StrictModel):
    """Opt-in write/read round trip on a dedicated key that expires by itself."""

    key: str | None = Field(default=None, min_length=1)
    """Defaults to ``tradeops:canary:<target name>``."""
    ttl: Duration = 60.0


class RedisTarget(TargetBase, PasswordMixin):
    """One Redis server (``address``), the master a Sentinel group watches
    (``sentinels`` and ``master``), or a Redis Cluster (``cluster`` seeds). The
    credentials and TLS settings apply to every server, Sentinel and node."""

    address: HostPort | None = None
    sentinels: list[HostPort] | None = Field(default=None, min_length=1, max_length=16)
    """Sentinels to ask for the master's address (one answering is enough)."""
    master: Name | None = None
    """The master's name in the Sentinels' configuration (``sentinel monitor NAME``)."""
    cluster: list[HostPort] | None = Field(default=None, min_length=1, max_length=16)
    """Cluster nodes to ask for the cluster's view (one answering is enough)."""
    max_nodes: int = Field(default=64, ge=1, le=1000)
    """A cluster's nodes with series of their own, at most (primaries first)."""
    username: str | None = None
    db: int = Field(default=0, ge=0, le=15)
    tls: HostTLSConfig | None = None
    canary: Canary | None = None
    heartbeats: list[HeartbeatKey] = Field(default_factory=list)
    streams: list[StreamKey] = Field(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _address_unless_another_mode(
        cls, data: Any, handler: ModelWrapValidatorHandler[RedisTarget]
    ) -> RedisTarget:
        """Without ``sentinels`` or ``cluster`` the target is one server and ``address``
        is a required field, as it was before the other modes (the other fields are
        still checked, and their problems reported with it)."""
        if not isinstance(data, dict) or any(data.get(k) is not None for k in _MODES):
            return handler(data)
        problems = [InitErrorDetails(type="missing", loc=("address",), input=data)]
        try:
            handler({**data, "address": "127.0.0.1:6379"})
        except ValidationError as exc:
            problems += [_details(e) for e in exc.errors()]
        raise ValidationError.from_exception_data(cls.__name__, problems)

    @model_validator(mode="after")
    def _one_mode(self) -> RedisTarget:
        modes = [self.address, self.sentinels, self.cluster]
        if sum(m is not None for m in modes) != 1:
            raise ValueError("give exactly one of address, sentinels or cluster")
        if self.sentinels is not None and self.master is None:
            raise ValueError("sentinels needs master: the name the Sentinels monitor")
        if self.sentinels is None and self.master is not None:
            raise ValueError("master goes with sentinels")
        if self.cluster is None and "max_nodes" in self.model_fields_set:
            raise ValueError("max_nodes goes with cluster")
        if self.cluster is not None:
            keyed = [f for f in ("canary", "heartbeats", "streams", "db") if self._set(f)]
            if keyed:
                raise ValueError(
                    f"{', '.join(keyed)}: not supported with cluster (a cluster target reports"
                    " the cluster; probe a node's keys with a target of its own)"
                )
        return self

    def _set(self, name: str) -> bool:
        """True when the field was given a value other than its default."""
        return name in self.model_fields_set and getattr(self, name) not in (None, [], 0)


_MODES = ("address", "sentinels", "cluster")


def _details(error: Any) -> InitErrorDetails:
    """A validation error's details as pydantic takes them back (known types only)."""
    details = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
    if "ctx" in error:
        details["ctx"] = error["ctx"]
    return details


def tls_kwargs(tls: TLSConfig | None) -> dict[str, Any]:
    """redis-py's TLS arguments (it takes files and flags, not an SSLContext)."""
    if tls is None:
        return {}
    return {
        "ssl": True,
        "ssl_ca_certs": str(tls.ca_file) if tls.ca_file else None,
        "ssl_certfile": str(tls.cert_file) if tls.cert_file else None,
        "ssl_keyfile": str(tls.key_file) if tls.key_file else None,
        "ssl_cert_reqs": "none" if tls.insecure_skip_verify else "required",
        "ssl_check_hostname": not tls.insecure_skip_verify,
    }


class ReplyReader(asyncio.StreamReader):
    """The stream a bounded connection's parser reads: it gives the event loop a
    turn every ``LINES_PER_TURN`` lines.

    redis-py's parser costs a few microseconds per reply element, so 16 KiB of
    ``:1`` elements (4096 of them) held the loop 12 ms on an idle machine and
    40-50 ms on a busy one; counted in lines, a slice stays short whatever the
    elements' size.
    """

    _lines = 0

    async def readline(self) -> bytes:
        """One line, after a turn of the loop every ``LINES_PER_TURN`` calls."""
        self._lines += 1
        if self._lines % LINES_PER_TURN == 0:
            await asyncio.sleep(0)
        return await super().readline()


class BoundedConnection(Connection):
    """A redis-py connection whose socket goes through ``BoundedProtocol``.

    ``budget`` is called each time a socket is opened and returns the run's
    ``ReadBudget`` (a probe state's ``budget`` is replaced before its first run,
    so the connection asks for it rather than keeping the one it was built with).
    """

    def __init__(self, *, budget: Callable[[], ReadBudget], **kwargs: Any) -> None:
        self._budget = budget
        super().__init__(**kwargs)

    async def _connect(self) -> None:
        """``asyncio.open_connection`` with ``BoundedProtocol`` between the transport
        and the stream reader; TCP options as redis-py sets them."""
        loop = asyncio.get_running_loop()
        reader = ReplyReader(loop=loop)
        inner = asyncio.StreamReaderProtocol(reader, loop=loop)
        budget = self._budget()
        async with asyncio.timeout(self.socket_connect_timeout):
            transport, _ = await loop.create_connection(
                lambda: BoundedProtocol(inner, budget), **self._connection_arguments()
            )
        writer = asyncio.StreamWriter(transport, inner, reader, loop)
        try:
            self._set_socket_options(transport.get_extra_info("socket"))
        except (OSError, TypeError):
            transport.abort()
            raise
        self._reader = reader
        self._writer = writer

    def _set_socket_options(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.socket_keepalive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            options = cast(Mapping[int, int | bytes], self.socket_keepalive_options)
            for option, setting in options.items():
                sock.setsockopt(socket.SOL_TCP, option, setting)


class BoundedSSLConnection(BoundedConnection, SSLConnection):
    """``BoundedConnection`` over TLS: the budget counts the decrypted replies."""


def bounded_client(
    budget: Callable[[], ReadBudget],
    address: str,
    tls: TLSConfig | None = None,
    **options: Any,
) -> aioredis.Redis:
    """A ``redis.asyncio.Redis`` whose every connection charges ``budget()``.

    ``options`` are redis-py connection and pool arguments (``db``, ``username``,
    ``password``, ``socket_timeout``, ``socket_connect_timeout``, ``retry``,
    ``client_name``, ``max_connections``...). ``aclose()`` closes the pool too.
    """
    host, port = parse_host_port(address)
    ssl_options = {k: v for k, v in tls_kwargs(tls).items() if k != "ssl"}
    pool = aioredis.ConnectionPool(
        connection_class=BoundedSSLConnection if tls else BoundedConnection,
        host=host,
        port=port,
        budget=budget,
        **ssl_options,
        **options,
    )
    return aioredis.Redis.from_pool(pool)


DEFAULT_BUDGET = 1 << 20
"""The kind's ``response_budget``: docs/redis.md, a busy, fully configured target read 82 KB."""
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


_UNREACHABLE = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)


def classify(exc: BaseException) -> Reason | None:
    """Map redis-py exceptions to reasons, by type and cause, never by message:
    redis-py's messages carry the address, and a host named ``cache-timeout`` must
    not turn a reset connection into a timeout."""
    if isinstance(exc, rexc.AuthenticationError | rexc.AuthorizationError | rexc.NoPermissionError):
        return "auth"
    if isinstance(exc, rexc.ResponseError) and any(
        s in str(exc) for s in ("NOAUTH", "WRONGPASS", "NOPERM")
    ):
        return "auth"
    causes = _causes(exc)
    if any(isinstance(c, OSError) and c.errno in _UNREACHABLE for c in causes):
        return "refused"
    if any(isinstance(c, socket.gaierror) for c in causes):
        return "other"  # the name does not resolve: nothing was reached to refuse or garble
    if isinstance(exc, rexc.TimeoutError):
        return "timeout"
    protocol = rexc.ConnectionError | rexc.InvalidResponse | rexc.ResponseError | rexc.DataError
    if isinstance(exc, protocol):
        return "protocol"
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from or during (redis-py wraps socket errors)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


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


KIND: ProbeKind[RedisTarget, RedisState] = ProbeKind(
    name="redis",
    target_model=RedisTarget,
    probe=probe,
    new_state=RedisState,
    address_field="address",
    example_address="127.0.0.1:6379",
    classify=classify,
    response_budget=DEFAULT_BUDGET,
)
