"""The opt-in canary: a SET and a GET of a key that expires by itself, timed, and
what the probe remembers of it across runs."""

from __future__ import annotations

import itertools
import time

import redis.asyncio as aioredis
import redis.exceptions as rexc

from ...logs import log_change
from ...probe import ProbeResult
from ...redact import error_text
from . import metrics as M
from .config import Canary


class CanaryState:
    """A target's canary across runs: the tokens it writes, its last reply error."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._counter = itertools.count()
        self.error: str | None = None
        """The canary's last reply error (masked text); None while it succeeds."""

    def token(self) -> str:
        """A value unique to this run."""
        return f"{time.time_ns()}-{next(self._counter)}"

    def note(self, error: str | None) -> None:
        """Log the canary's reply errors once per episode (and per distinct error)."""
        who = {"kind": "redis", "target": self.target}
        messages = ("redis canary write failed", "redis canary recovered")
        log_change(self.error, error, messages, who, error=error)
        self.error = error


def key_of(canary: Canary, target: str) -> str:
    """The canary's key: the configured one, else ``tradeops:canary:<target>``."""
    return canary.key or f"tradeops:canary:{target}"


async def canary_series(
    r: ProbeResult, canary: Canary, state: CanaryState, client: aioredis.Redis
) -> None:
    """SET and GET the canary key. A reply error (a read-only replica after a
    failover, OOM under ``noeviction``, an ACL without write rights) is the
    canary's failure, not the target's: success 0, no round trip, the run goes on.
    Connection errors and timeouts still fail the run."""
    name = state.target
    token = state.token()
    key = key_of(canary, name)
    start = time.perf_counter()
    try:
        await client.set(key, token, px=int(canary.ttl * 1000))
        back = await client.get(key)
    except rexc.ResponseError as exc:
        state.note(error_text(exc))
        r.add(M.CANARY_OK, False, name)
        return
    state.note(None)
    r.add(M.CANARY_ROUNDTRIP, time.perf_counter() - start, name)
    if isinstance(back, bytes):
        back = back.decode(errors="replace")
    r.add(M.CANARY_OK, back == token, name)
