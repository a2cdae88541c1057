"""Redis Sentinel: which server is the master, what the Sentinels think of it, and
the failovers the probe followed.

Every run asks each configured Sentinel, concurrently and each within its own
slice of the deadline, for the master's address (``SENTINEL
get-master-addr-by-name``), its state (``SENTINEL MASTER``: flags, quorum,
config epoch) and ``SENTINEL CKQUORUM``. A Sentinel that is down, hung or
hostile only lowers the count of those that answered. The address with the
highest config epoch wins: the Sentinel that led a failover raises the epoch
when it promotes the replica, so it is believed before the others have heard.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
import redis.exceptions as rexc

from ...budget import ReadBudget
from ...probe import ProbeError, ProbeResult
from . import metrics as M

SENTINEL_BUDGET = 64 * 1024
"""Bytes one Sentinel may send per run (a run reads about 0.7 KB from one). Each
Sentinel has its own, so a flooding one is cut off without failing the run."""


@dataclass(frozen=True, slots=True)
class SentinelAnswer:
    """What one Sentinel said about the master."""

    address: str
    """``host:port`` of the master (of the promoted replica once a failover has)."""
    epoch: int
    """The master's configuration epoch as this Sentinel knows it."""
    quorum: int | None
    master_down: bool
    """The Sentinel flags the master subjectively or objectively down."""
    failover: bool
    """A failover of the master is in progress."""
    quorum_ok: bool
    """``CKQUORUM``: the quorum and a majority to authorise a failover are reachable."""


class UnknownMaster(Exception):
    """The peer answered but monitors no master of that name (or is no Sentinel)."""


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _address(reply: object) -> str | None:
    """``[ip, port]`` -> ``ip:port`` (brackets around an IPv6 address); None for nil."""
    if not isinstance(reply, list | tuple) or len(reply) != 2:
        return None
    host, port = _text(reply[0]), _text(reply[1])
    if not host or not port.isdigit():
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _fields(reply: object) -> dict[str, str]:
    """``SENTINEL MASTER``'s flat name/value list (RESP2) or map (RESP3) as a dict."""
    if isinstance(reply, dict):
        return {_text(k): _text(v) for k, v in reply.items()}
    if isinstance(reply, list | tuple):
        items = [_text(v) for v in reply]
        return dict(zip(items[0::2], items[1::2], strict=False))
    return {}


def _int(fields: dict[str, str], key: str) -> int | None:
    value = fields.get(key, "")
    return int(value) if value.isdigit() else None


def _is_unknown_master(exc: BaseException) -> bool:
    """The Sentinel does not monitor that name, or the peer is a Redis server that
    has no SENTINEL command (its error reply; a reply never carries the address)."""
    text = str(exc)
    return isinstance(exc, rexc.ResponseError) and (
        "No such master" in text or "unknown command" in text
    )


async def ask(client: aioredis.Redis, master: str) -> SentinelAnswer:
    """One Sentinel's view of ``master``; raises what the client raises, or
    ``UnknownMaster``."""
    pipe = client.pipeline(transaction=False)
    pipe.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master)
    pipe.execute_command("SENTINEL", "MASTER", master)
    pipe.execute_command("SENTINEL", "CKQUORUM", master)
    addr, state, ckquorum = await pipe.execute(raise_on_error=False)
    for reply in (addr, state):
        if isinstance(reply, BaseException):
            if _is_unknown_master(reply):
                raise UnknownMaster(str(reply))
            raise reply
    address = _address(addr)
    if address is None:
        raise UnknownMaster("no address for the master")
    fields = _fields(state)
    flags = set(fields.get("flags", "").split(","))
    if isinstance(ckquorum, rexc.AuthenticationError | rexc.NoPermissionError):
        raise ckquorum
    return SentinelAnswer(
        address=address,
        epoch=_int(fields, "config-epoch") or 0,
        quorum=_int(fields, "quorum"),
        master_down=bool(flags & {"s_down", "o_down"}),
        failover="failover_in_progress" in flags,
        quorum_ok=not isinstance(ckquorum, BaseException) and _text(ckquorum).startswith("OK"),
    )


async def ask_all(
    clients: Sequence[aioredis.Redis],
    budgets: Sequence[ReadBudget],
    master: str,
    timeout: float,
) -> list[SentinelAnswer | BaseException]:
    """Every Sentinel's answer or error, in config order; each within ``timeout``."""

    async def one(client: aioredis.Redis, budget: ReadBudget) -> SentinelAnswer:
        budget.reset()
        try:
            async with asyncio.timeout(timeout):
                return await ask(client, master)
        except Exception:
            if budget.exceeded:  # whatever the client made of the aborted connection
                raise ProbeError("protocol", budget.message()) from None
            raise

    results = await asyncio.gather(
        *(one(c, b) for c, b in zip(clients, budgets, strict=True)), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result  # cancellation of the run itself
    return list(results)


def choose(answers: Sequence[SentinelAnswer]) -> SentinelAnswer:
    """The answer to believe: the highest config epoch, then the address most
    Sentinels give, then config order."""
    top = max(a.epoch for a in answers)
    newest = [a for a in answers if a.epoch == top]
    votes = Counter(a.address for a in newest)
    best = max(votes.values())
    return next(a for a in newest if votes[a.address] == best)


def failure(results: Sequence[SentinelAnswer | BaseException], master: str) -> BaseException:
    """Why no Sentinel answered: a config problem if one answered without knowing
    the master, else the first Sentinel's error (the same reason every run)."""
    errors = [r for r in results if isinstance(r, BaseException)]
    if any(isinstance(e, UnknownMaster) for e in errors):
        return ProbeError(
            "config",
            f"no configured Sentinel monitors a master named {master!r}"
            " (check master and sentinels)",
        )
    for e in errors:
        if isinstance(e, rexc.AuthenticationError | rexc.AuthorizationError):
            return e
    return errors[0]


@dataclass(slots=True)
class MasterTracker:
    """The master's address across runs and the changes of it seen so far."""

    address: str | None = None
    changes: int = 0
    changed_at: float | None = None

    def follow(self, address: str, now: float) -> str | None:
        """Record this run's address; returns the previous one if it changed."""
        previous = self.address
        self.address = address
        if previous is None or previous == address:
            return None
        self.changes += 1
        self.changed_at = now
        return previous


def series(
    r: ProbeResult,
    name: str,
    results: Sequence[SentinelAnswer | BaseException],
    tracker: MasterTracker,
) -> None:
    """The Sentinels' series of one run."""
    answers = [a for a in results if isinstance(a, SentinelAnswer)]
    r.add(M.SENTINELS, len(results), name)
    r.add(M.SENTINELS_REACHABLE, len(answers), name)
    r.add(M.SENTINEL_MASTER_CHANGES, tracker.changes, name)
    r.add(M.SENTINEL_MASTER_CHANGED, tracker.changed_at, name)
    if not answers:
        return  # what no Sentinel said is not known: absent, not 0
    r.add(M.SENTINELS_MASTER_UP, sum(not a.master_down for a in answers), name)
    quorums = [a.quorum for a in answers if a.quorum is not None]
    r.add(M.SENTINEL_QUORUM, max(quorums) if quorums else None, name)
    r.add(M.SENTINEL_QUORUM_OK, any(a.quorum_ok for a in answers), name)
    r.add(M.SENTINEL_FAILOVER_IN_PROGRESS, any(a.failover for a in answers), name)
