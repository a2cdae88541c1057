"""Helpers for the event-bus tests: the runtime stand-in and one-shot probe runs."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exporter import config as cfg
from exporter.kinds.eventbus import KIND
from exporter.kinds.eventbus.config import EventBusTarget
from exporter.kinds.eventbus.probe import EventBusState
from exporter.probe import Reason
from exporter.render import render
from exporter.scheduler import run_probe
from exporter.snapshot import assemble
from stack.sim_eventbus import EventBusSim

from .helpers import Series, parse


@pytest.fixture
async def sim() -> AsyncIterator[EventBusSim]:
    """A stand-in with no background traffic: tests publish events themselves."""
    s = await EventBusSim(rate=0, capacity=10, handlers=2).start()
    yield s
    await s.stop()


def target_from(yaml_text: str) -> EventBusTarget:
    """The single eventbus target of a config text (defaults filled in)."""
    target = cfg.parse(yaml_text, "cfg.yml").targets["eventbus"][0]
    assert isinstance(target, EventBusTarget)
    return target


@dataclass
class Outcome:
    """One probe run: its series (parsed exposition), failure reason and error text."""

    series: Series
    reason: Reason | None
    error: str
    duration: float


async def probe_once(target: EventBusTarget, state: EventBusState) -> Outcome:
    """Run the probe once under the target's timeout, as the scheduler does."""
    out = await run_probe(KIND, target, state, target.timeout_s, time.time)
    text = assemble({name: [chunk] for name, chunk in render(out.samples).items()})
    return Outcome(parse(text), out.reason, str(out.error) if out.error else "", out.duration)


@dataclass
class Certs:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def make_certs(directory: Path) -> Certs:
    """Generate the CA and server certificate with the openssl CLI."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    ca_key, ca = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:bus.test\n")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=tradeops-test-ca",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=127.0.0.1",
    )
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return Certs(ca, cert, key)
