"""Redis with high availability, on free loopback ports: a Sentinel group watching
a primary and its replica, and a Redis Cluster of primaries.

Both are Debian's ``redis-server`` (``--sentinel`` runs it as a Sentinel; the
``redis-sentinel`` package is the same binary). Timings are short so that tests
see a failover in seconds: a Sentinel declares the primary down after
``down_after_ms`` without an answer, a cluster node after ``node_timeout_ms``.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

from .redis_server import Redis
from .services import LOOPBACK, Service, find_binary, free_port


def command(port: int, *args: str, password: str | None = None, timeout: float = 2.0) -> bytes:
    """Send one command in RESP and return the raw reply (first read of up to 64 KiB)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection((LOOPBACK, port), timeout) as s:
        if password:
            s.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password), password.encode()))
            s.recv(1024)
        s.sendall(b"".join(parts))
        return s.recv(65536)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` (socket errors count as False) until it holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not within {timeout}s")


class RedisNode(Redis):
    """A redis-server with extra command-line options (replication, cluster mode)."""

    def __init__(
        self,
        root: Path,
        extra: Sequence[str] = (),
        password: str | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__(root, port=port, password=password)
        self.extra = list(extra)

    def command(self) -> list[str]:
        cmd = [*super().command(), "--repl-diskless-sync-delay", "0"]  # no 5 s wait to sync
        if self.password:
            cmd += ["--masterauth", self.password]  # a replica authenticates to its primary
        return cmd + self.extra

    def info(self, section: str) -> str:
        """``INFO section`` as text."""
        return command(self.port, "INFO", section, password=self.password).decode(errors="replace")


class Sentinel(Service):
    """A Sentinel watching ``master`` at ``primary``'s address, quorum ``quorum``."""

    name = "sentinel"

    def __init__(
        self,
        root: Path,
        primary: RedisNode,
        master: str = "mymaster",
        quorum: int = 2,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        password: str | None = None,
    ) -> None:
        super().__init__(root)
        self.primary = primary
        self.master = master
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.password = password
        self.conf = self.dir / "sentinel.conf"
        self.id = secrets.token_hex(20)
        self.peers: list[Sentinel] = []
        """The other Sentinels of the group, written into the config as already known."""
        self.replicas: list[RedisNode] = []
        """The primary's replicas, written into the config as already known."""

    def prepare(self) -> None:
        m = self.master
        lines = [
            f"port {self.port}",
            f"bind {LOOPBACK}",
            "protected-mode no",
            f"dir {self.dir}",
            f"sentinel monitor {m} {LOOPBACK} {self.primary.port} {self.quorum}",
            f"sentinel down-after-milliseconds {m} {self.down_after_ms}",
            f"sentinel failover-timeout {m} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {m} 1",
            f"sentinel myid {self.id}",
            # known from the start: no wait for the hello messages (every 2 s) and INFO
            *(f"sentinel known-sentinel {m} {LOOPBACK} {p.port} {p.id}" for p in self.peers),
            *(f"sentinel known-replica {m} {LOOPBACK} {r.port}" for r in self.replicas),
        ]
        if self.primary.password:
            lines.append(f"sentinel auth-pass {m} {self.primary.password}")
        if self.password:
            lines.append(f"requirepass {self.password}")  # also used towards other Sentinels
        self.conf.write_text("\n".join(lines) + "\n")  # Sentinel rewrites it as it learns

    def command(self) -> list[str]:
        return [find_binary("redis-server"), str(self.conf), "--sentinel"]

    def ask(self, *args: str) -> str:
        """A ``SENTINEL`` subcommand's raw reply, as text."""
        return command(self.port, "SENTINEL", *args, password=self.password).decode(
            errors="replace"
        )

    def master_port(self) -> int | None:
        """The primary's port as this Sentinel reports it."""
        reply = self.ask("get-master-addr-by-name", self.master).split("\r\n")
        return int(reply[4]) if len(reply) > 4 and reply[4].isdigit() else None


class SentinelGroup:
    """A primary, one replica and ``size`` Sentinels (quorum 2), started in that
    order. Each Sentinel's config names the replica and the other Sentinels
    already, so the group is ready in well under a second (discovering each
    other through hello messages takes seconds)."""

    def __init__(
        self, root: Path, size: int = 3, master: str = "mymaster", password: str | None = None
    ) -> None:
        self.master = master
        self.password = password
        self.primary = RedisNode(root / "primary", password=password)
        self.replica = RedisNode(
            root / "replica",
            ["--replicaof", LOOPBACK, str(self.primary.port)],
            password=password,
        )
        self.sentinels = [
            Sentinel(root / f"sentinel-{i}", self.primary, master, password=password)
            for i in range(size)
        ]
        for s in self.sentinels:
            s.peers = [p for p in self.sentinels if p is not s]
            s.replicas = [self.replica]

    @property
    def addresses(self) -> list[str]:
        """The Sentinels' ``host:port`` addresses."""
        return [s.address for s in self.sentinels]

    def start(self, timeout: float = 20.0) -> Self:
        """Start everything and wait until every Sentinel sees the replica and the
        others; on failure, stop what did start."""
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        self.primary.start()
        self.replica.start()
        wait_until(
            lambda: "master_link_status:up" in self.replica.info("replication"),
            timeout,
            "replica linked to its primary",
        )
        for s in self.sentinels:
            s.start()
        others = len(self.sentinels) - 1
        for s in self.sentinels:
            wait_until(lambda s=s: self._settled(s, others), timeout, "Sentinels settled")  # type: ignore[misc]

    def _settled(self, sentinel: Sentinel, others: int) -> bool:
        reply = sentinel.ask("master", self.master).split("\r\n")
        fields = dict(zip(reply[2::4], reply[4::4], strict=False))
        return fields.get("num-slaves") == "1" and fields.get("num-other-sentinels") == str(others)

    def stop(self) -> None:
        """Stop every process (paused ones too)."""
        for service in (*self.sentinels, self.replica, self.primary):
            service.stop()


SLOTS = 16384


class RedisCluster:
    """A Redis Cluster of ``size`` primaries without replicas (``redis-cli --cluster
    create``), nodes declared failing after ``node_timeout_ms``."""

    def __init__(
        self, root: Path, size: int = 3, node_timeout_ms: int = 1000, password: str | None = None
    ) -> None:
        self.password = password
        options = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(node_timeout_ms),
        ]  # fmt: skip
        # the bus port is given: port + 10000 (the default) may be taken or above 65535
        self.nodes = [
            RedisNode(root / f"node-{i}", [*options, "--cluster-port", str(free_port())], password)
            for i in range(size)
        ]

    @property
    def addresses(self) -> list[str]:
        """The nodes' ``host:port`` addresses."""
        return [n.address for n in self.nodes]

    def start(self, timeout: float = 20.0) -> Self:
        """Start the nodes, assign the slots and wait until every node says ok; on
        failure, stop what did start."""
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        for node in self.nodes:
            node.start()
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        subprocess.run(
            [find_binary("redis-cli"), *auth, "--cluster", "create", *self.addresses,
             "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout,
        )  # fmt: skip
        for node in self.nodes:
            wait_until(lambda n=node: self.state(n) == "ok", timeout, "cluster state ok")  # type: ignore[misc]

    def state(self, node: RedisNode) -> str:
        """``cluster_state`` as ``node`` sees it."""
        text = command(node.port, "CLUSTER", "INFO", password=self.password).decode()
        return text.split("cluster_state:", 1)[1].split("\r\n", 1)[0]

    def node_id(self, node: RedisNode) -> str:
        """The node's cluster id (``CLUSTER MYID``)."""
        return command(node.port, "CLUSTER", "MYID", password=self.password).decode().split()[1]

    def slots(self, node: RedisNode) -> int:
        """How many slots ``node`` serves, as it reports itself."""
        text = command(node.port, "CLUSTER", "NODES", password=self.password).decode()
        mine = next(line for line in text.splitlines() if "myself" in line)
        total = 0
        for part in mine.split()[8:]:
            if part.startswith("["):
                continue  # a slot being migrated or imported
            low, _, high = part.partition("-")
            total += int(high or low) - int(low) + 1
        return total

    def stop(self) -> None:
        """Stop every node (paused ones too)."""
        for node in self.nodes:
            node.stop()
