"""The keys a target watches: heartbeat keys holding a timestamp, and streams with
their consumer groups. One pipeline reads them all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from ...probe import ProbeResult
from . import metrics as M
from .config import RedisTarget, StreamKey

_MS_THRESHOLD = 1e11  # a heartbeat value above this is in milliseconds
_STREAM_REPLIES = 3  # XLEN, XINFO STREAM, XINFO GROUPS


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


def stream_id_seconds(entry_id: bytes | str | None) -> float | None:
    """The Unix time (seconds) in a stream entry ID ``<ms>-<seq>``; None if it has none."""
    if not entry_id:
        return None
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, _ = text.partition("-")
    return int(ms) / 1000.0 if ms.isdigit() and int(ms) > 0 else None


async def keys_series(r: ProbeResult, target: RedisTarget, client: aioredis.Redis) -> None:
    """The heartbeat and stream series of ``target``: nothing is asked without any."""
    if not target.heartbeats and not target.streams:
        return
    replies = await _read(target, client)
    beats = len(target.heartbeats)
    _heartbeat_series(r, target, replies[:beats])
    for i, st in enumerate(target.streams):
        start = beats + _STREAM_REPLIES * i
        _stream_series(r, target.name, st, replies[start : start + _STREAM_REPLIES])


async def _read(target: RedisTarget, client: aioredis.Redis) -> list[Any]:
    """One pipeline for every key; an error reply (a key of another type) is kept
    in its place as an exception."""
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
    return list(await pipe.execute(raise_on_error=False))


def _heartbeat_series(r: ProbeResult, target: RedisTarget, replies: Sequence[Any]) -> None:
    name = target.name
    for hb, raw in zip(target.heartbeats, replies, strict=False):
        ts = None if isinstance(raw, Exception) else parse_heartbeat(raw)
        r.add(M.HEARTBEAT_PRESENT, ts is not None, name, hb.name)
        r.add(M.HEARTBEAT_TIME, ts, name, hb.name)
        r.add(M.HEARTBEAT_MAX_GAP, hb.max_gap, name, hb.name, hb.calendar or target.calendar)


def _stream_series(r: ProbeResult, name: str, st: StreamKey, replies: Sequence[Any]) -> None:
    length, info, groups = replies
    if isinstance(length, Exception):
        return  # the key holds another type: nothing to report for it
    r.add(M.STREAM_LENGTH, length, name, st.name)
    if isinstance(info, dict):
        last = stream_id_seconds(info.get("last-generated-id"))
        r.add(M.STREAM_LAST_ENTRY, last, name, st.name)
    if isinstance(groups, list):
        for g in groups:
            raw_name = g["name"]
            group = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            labels = (name, st.name, group)
            r.add(M.STREAM_GROUP_PENDING, g.get("pending"), *labels)
            r.add(M.STREAM_GROUP_CONSUMERS, g.get("consumers"), *labels)
            r.add(M.STREAM_GROUP_LAG, g.get("lag"), *labels)
