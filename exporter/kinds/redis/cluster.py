"""Redis Cluster: the cluster's state and slot coverage (``CLUSTER INFO``) and each
node's role, slots, link and failure flags (``CLUSTER NODES``), as one node sees
them.

Every run asks one seed: the one that answered last time first, then the others
in config order, each within its own slice of the deadline, so a seed that is
down or hung costs at most one slice. Per-node series carry the node ID (stable
for the node's life, bounded by the cluster's size) and stop at ``max_nodes``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
import redis.exceptions as rexc

from ...budget import ReadBudget
from ...probe import ProbeError, ProbeResult
from . import metrics as M

SLOTS = 16384
_NODE_ID = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One line of ``CLUSTER NODES``."""

    id: str
    flags: frozenset[str]
    primary_id: str | None
    """For a replica: the ID of the primary it follows."""
    link_up: bool
    slots: int

    @property
    def primary(self) -> bool:
        """True for a primary (``master`` flag)."""
        return "master" in self.flags


def _slot_count(part: str) -> int:
    """Slots in ``5461`` or ``0-5460``; 0 for a slot in migration (``[...]``)."""
    if part.startswith("["):
        return 0
    low, _, high = part.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        raise ProbeError("protocol", "CLUSTER NODES has a slot range that is not numeric")
    return int(high or low) - int(low) + 1


def parse_nodes(text: str) -> list[ClusterNode]:
    """``CLUSTER NODES`` -> its nodes (nodes still in handshake left out: their IDs
    are temporary)."""
    nodes = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 8:
            raise ProbeError("protocol", "CLUSTER NODES has a line of fewer than 8 fields")
        flags = frozenset(parts[2].split(","))
        if "handshake" in flags:
            continue
        if not _NODE_ID.fullmatch(parts[0]):  # it becomes a label value
            raise ProbeError("protocol", "CLUSTER NODES has a node ID that is not 40 hex digits")
        nodes.append(
            ClusterNode(
                id=parts[0],
                flags=flags,
                primary_id=None if parts[3] == "-" else parts[3],
                link_up="myself" in flags or parts[7] == "connected",
                slots=sum(_slot_count(p) for p in parts[8:]),
            )
        )
    return nodes


def parse_info(text: str) -> dict[str, str]:
    """``CLUSTER INFO``'s ``key:value`` lines."""
    out = {}
    for line in text.splitlines():
        key, sep, val = line.partition(":")
        if sep:
            out[key.strip()] = val.strip()
    return out


def _text(reply: object, what: str) -> str:
    if isinstance(reply, bytes):
        return reply.decode(errors="replace")
    if isinstance(reply, str):
        return reply
    raise ProbeError("protocol", f"{what} did not answer a bulk string")


async def ask(client: aioredis.Redis, seed: int) -> tuple[dict[str, str], list[ClusterNode]]:
    """``CLUSTER INFO`` and ``CLUSTER NODES`` of one node (seed number ``seed``)."""
    pipe = client.pipeline(transaction=False)
    pipe.execute_command("CLUSTER", "INFO")
    pipe.execute_command("CLUSTER", "NODES")
    try:
        info, nodes = await pipe.execute()
    except rexc.ResponseError as exc:
        if "cluster support disabled" in str(exc):
            raise ProbeError(
                "config", f"cluster[{seed}] is not a cluster node (cluster support disabled)"
            ) from None
        raise
    parsed = parse_info(_text(info, "CLUSTER INFO"))
    if "cluster_state" not in parsed:
        raise ProbeError("protocol", "CLUSTER INFO has no cluster_state")
    return parsed, parse_nodes(_text(nodes, "CLUSTER NODES"))


@dataclass(slots=True)
class SeedOrder:
    """Which seed to ask first: the one that answered last."""

    count: int
    last_good: int = 0

    def order(self) -> list[int]:
        """Seed numbers, the last good one first, then the others in config order."""
        return [self.last_good, *(i for i in range(self.count) if i != self.last_good)]


async def ask_seeds(
    clients: Sequence[aioredis.Redis],
    budgets: Sequence[ReadBudget],
    order: SeedOrder,
    slice_seconds: float,
    remaining: Callable[[], float],
) -> tuple[dict[str, str], list[ClusterNode]]:
    """The first seed's answer; if none answers, the error of the lowest-numbered seed.
    Each seed has its own budget: one that floods is cut off and the next is asked."""
    errors: dict[int, Exception] = {}
    for i in order.order():
        budgets[i].reset()
        try:
            async with asyncio.timeout(max(0.0, min(slice_seconds, remaining()))):
                answer = await ask(clients[i], i)
        except Exception as exc:  # this seed failed; the next may answer
            over = budgets[i].exceeded
            errors[i] = ProbeError("protocol", budgets[i].message()) if over else exc
            continue
        order.last_good = i
        return answer
    raise errors[min(errors)]


def _num(info: dict[str, str], key: str) -> float | None:
    value = info.get(key, "")
    return float(value) if value.isdigit() else None


def cluster_series(r: ProbeResult, name: str, info: dict[str, str]) -> None:
    """The cluster-wide series (``CLUSTER INFO`` of the node that answered)."""
    r.add(M.CLUSTER_STATE_OK, info.get("cluster_state") == "ok", name)
    plain = {
        M.CLUSTER_SLOTS_ASSIGNED: "cluster_slots_assigned",
        M.CLUSTER_SLOTS_OK: "cluster_slots_ok",
        M.CLUSTER_SLOTS_PFAIL: "cluster_slots_pfail",
        M.CLUSTER_SLOTS_FAIL: "cluster_slots_fail",
        M.CLUSTER_KNOWN_NODES: "cluster_known_nodes",
        M.CLUSTER_SIZE: "cluster_size",
        M.CLUSTER_CURRENT_EPOCH: "cluster_current_epoch",
    }
    for fam, key in plain.items():
        r.add(fam, _num(info, key), name)
    ok = _num(info, "cluster_slots_ok")
    r.add(M.CLUSTER_SLOT_COVERAGE, None if ok is None else ok / SLOTS, name)


def node_series(r: ProbeResult, name: str, nodes: Sequence[ClusterNode], max_nodes: int) -> None:
    """Per-node series for at most ``max_nodes`` nodes: primaries first, then by ID."""
    ranked = sorted(nodes, key=lambda n: (not n.primary, n.id))
    shown = ranked[:max_nodes]
    r.add(M.CLUSTER_NODES_UNREPORTED, len(ranked) - len(shown), name)
    followers: dict[str, int] = {}
    for n in nodes:
        if n.primary_id is not None:
            followers[n.primary_id] = followers.get(n.primary_id, 0) + 1
    for n in shown:
        labels = (name, n.id)
        r.add(M.CLUSTER_NODE_PRIMARY, n.primary, *labels)
        r.add(M.CLUSTER_NODE_SLOTS, n.slots, *labels)
        if n.primary:
            r.add(M.CLUSTER_NODE_REPLICAS, followers.get(n.id, 0), *labels)
        r.add(M.CLUSTER_NODE_LINK_UP, n.link_up, *labels)
        r.add(M.CLUSTER_NODE_PFAIL, "fail?" in n.flags, *labels)
        r.add(M.CLUSTER_NODE_FAIL, "fail" in n.flags, *labels)
