"""Redis: round trip, role and replication, clients, memory, persistence,
keyspace, an opt-in canary write/read, heartbeat keys and streams."""

from __future__ import annotations

import itertools
import time
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc
from pydantic import Field
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..catalogue import redis as M
from ..logs import log_change
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
from ..probe import ProbeContext, ProbeError, ProbeKind, ProbeResult, ProbeState, Reason
from ..redact import error_text

_MS_THRESHOLD = 1e11  # a heartbeat value above this is in milliseconds


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
    """One Redis server."""

    address: HostPort
    username: str | None = None
    db: int = Field(default=0, ge=0, le=15)
    tls: HostTLSConfig | None = None
    canary: Canary | None = None
    heartbeats: list[HeartbeatKey] = Field(default_factory=list)
    streams: list[StreamKey] = Field(default_factory=list)


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


class RedisState(ProbeState):
    """Holds the target's client (and its small connection pool) across runs."""

    def __init__(self, target: RedisTarget) -> None:
        host, port = parse_host_port(target.address)
        self.client = aioredis.Redis(
            host=host,
            port=port,
            db=target.db,
            username=target.username,
            password=target.password_value(),
            socket_connect_timeout=target.timeout_s,
            socket_timeout=target.timeout_s,
            retry=Retry(NoBackoff(), 1),  # one reconnect: a pooled socket may be stale
            max_connections=4,
            client_name="tradeops-exporter",
            **tls_kwargs(target.tls),
        )
        self._counter = itertools.count()
        self.canary_error: str | None = None
        """The canary's last reply error (masked text); None while it succeeds."""

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
        await self.client.aclose()


def classify(exc: BaseException) -> Reason | None:
    """Map redis-py exceptions to reasons."""
    if isinstance(exc, rexc.AuthenticationError | rexc.AuthorizationError | rexc.NoPermissionError):
        return "auth"
    if isinstance(exc, rexc.ResponseError) and any(
        s in str(exc) for s in ("NOAUTH", "WRONGPASS", "NOPERM")
    ):
        return "auth"
    if isinstance(exc, rexc.TimeoutError):
        return "timeout"
    if isinstance(exc, rexc.ConnectionError):
        text = str(exc).lower()
        if "refused" in text:
            return "refused"
        if "timeout" in text or "timed out" in text:
            return "timeout"
        return "protocol"
    if isinstance(exc, rexc.InvalidResponse | rexc.ResponseError | rexc.DataError):
        return "protocol"
    return None


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


async def _canary(r: ProbeResult, target: RedisTarget, state: RedisState) -> None:
    """SET and GET the canary key. A reply error (a read-only replica after a
    failover, OOM under ``noeviction``, an ACL without write rights) is the
    canary's failure, not the target's: success 0, no round trip, the run goes on.
    Connection errors and timeouts still fail the run."""
    assert target.canary is not None
    key = target.canary.key or f"tradeops:canary:{target.name}"
    token = state.canary_token()
    start = time.perf_counter()
    try:
        await state.client.set(key, token, px=int(target.canary.ttl * 1000))
        back = await state.client.get(key)
    except rexc.ResponseError as exc:
        state.note_canary(target.name, error_text(exc))
        r.add(M.CANARY_OK, False, target.name)
        return
    state.note_canary(target.name, None)
    r.add(M.CANARY_ROUNDTRIP, time.perf_counter() - start, target.name)
    if isinstance(back, bytes):
        back = back.decode(errors="replace")
    r.add(M.CANARY_OK, back == token, target.name)


async def probe(target: RedisTarget, ctx: ProbeContext[RedisState]) -> ProbeResult:
    """Probe one Redis server."""
    client = ctx.state.client
    r = ProbeResult()
    start = time.perf_counter()
    if not await client.ping():
        raise ProbeError("protocol", "PING did not answer PONG")
    r.add(M.PING, time.perf_counter() - start, target.name)
    info = await client.info()
    if not isinstance(info, dict) or "redis_version" not in info:
        raise ProbeError("protocol", "INFO reply has no redis_version")
    _server_series(r, target.name, info, ctx.now())
    _replication_series(r, target.name, info)
    await _keys_series(r, target, client)
    if target.canary is not None:
        await _canary(r, target, ctx.state)
    return r


KIND: ProbeKind[RedisTarget, RedisState] = ProbeKind(
    name="redis",
    target_model=RedisTarget,
    probe=probe,
    new_state=RedisState,
    address_field="address",
    example_address="127.0.0.1:6379",
    classify=classify,
)
