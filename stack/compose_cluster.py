"""The compose stack's Redis Cluster: joins the nodes and splits the slots, once."""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from exporter.model import parse_host_port

LOG = logging.getLogger("stack.compose")


# --- Redis Cluster ---------------------------------------------------------------

CLUSTER_SLOTS = 16384


def cluster_info(client: redis.Redis) -> dict[str, str]:
    """``CLUSTER INFO`` as a dict."""
    info = client.cluster("INFO")
    return {str(k): str(v) for k, v in info.items()}


def bus_port(client: redis.Redis, port: int) -> int:
    """A node's cluster bus port (``cluster-port``; 0 means the port plus 10000)."""
    configured = int(client.config_get("cluster-port").get("cluster-port") or 0)
    return configured or port + 10000


def slot_ranges(nodes: int) -> list[tuple[int, int]]:
    """The slots split evenly into ``nodes`` ranges (first, last), as
    ``redis-cli --cluster create`` splits them."""
    per = CLUSTER_SLOTS / nodes
    return [(round(i * per), round((i + 1) * per) - 1) for i in range(nodes)]


def create_cluster(nodes: Sequence[str], timeout: float = 60.0) -> bool:
    """Join the cluster-mode Redis ``nodes`` (``host:port``) into one cluster of
    primaries: each node its share of the slots and a config epoch of its own, then
    ``CLUSTER MEET`` (by IP address: hostnames are resolved first) from the first
    node; waits until every node reports ``cluster_state:ok``. Nothing is changed
    when the first node already sees every slot assigned. True if it created the
    cluster, False if it was there; raises TimeoutError when the nodes do not
    answer or the cluster is not ok within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    addresses = [parse_host_port(n) for n in nodes]
    clients = [redis.Redis(host=h, port=p, socket_timeout=5) for h, p in addresses]
    try:
        for client in clients:
            _retry_until(end, client.ping, "a cluster node to answer")
        created = int(cluster_info(clients[0]).get("cluster_slots_assigned", 0)) < CLUSTER_SLOTS
        if created:
            for epoch, (client, (first, last)) in enumerate(
                zip(clients, slot_ranges(len(clients)), strict=True), 1
            ):
                with contextlib.suppress(redis.ResponseError):  # a node that knows others
                    client.cluster("SET-CONFIG-EPOCH", epoch)
                client.cluster("ADDSLOTSRANGE", first, last)
            for client, (host, port) in zip(clients[1:], addresses[1:], strict=True):
                ip = socket.gethostbyname(host)
                clients[0].cluster("MEET", ip, port, bus_port(client, port))
        for client in clients:
            _retry_until(end, functools.partial(_cluster_ok, client), "cluster ok")
        return created
    finally:
        for client in clients:
            client.close()


def _cluster_ok(client: redis.Redis) -> bool:
    return cluster_info(client).get("cluster_state") == "ok"


def _retry_until(end: float, check: Callable[[], Any], what: str) -> None:
    """Call ``check`` until it returns a true value (connection errors count as
    false) or ``end`` (monotonic) passes."""
    while True:
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
            if check():
                return
        if time.monotonic() > end:
            raise TimeoutError(f"no {what} in time")
        time.sleep(0.2)
