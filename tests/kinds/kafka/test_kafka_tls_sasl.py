"""The Kafka probe and the event-bus Kafka canary over TLS and with SASL, on real Tansu.

Tansu 0.6 cannot serve TLS (``--cert`` with ``--key`` is refused at start, and one of
them alone leaves the listener plain: ``test_tansu_cannot_serve_tls`` pins it), so
TLS runs through a relay that terminates it in front of a real Tansu that advertises
the relay (``stack.kafka_cluster.TLSTansu``), with a CA-signed certificate. With
``--authentication`` Tansu requires SCRAM and no login can succeed: its users cannot
be created while it requires one (pinned below), and this build's memory/S3 store
keeps no SCRAM credential (its PostgreSQL store is not built in; see
``test_kafka_real_cluster.py``). So real brokers give the refusals here, over plain
TCP and over TLS; a successful SASL login is exercised only against a fake peer's
encoded handshake (``test_kafka_conn.py``).
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.kinds.eventbus.config import CanaryConfig
from exporter.kinds.eventbus.probe import EventBusState
from exporter.kinds.eventbus.transport import make_transport
from exporter.kinds.kafka import KIND
from exporter.kinds.kafka import metrics as M
from exporter.kinds.kafka.client import BoundedConnection
from exporter.kinds.kafka.config import KafkaTarget
from exporter.kinds.kafka.probe import KafkaState
from exporter.probe import ProbeError, Sample
from exporter.scheduler import RunOutcome, run_probe
from stack.kafka_cluster import TansuBroker, TLSTansu
from stack.sim_eventbus import EventBusSim
from stack.tansu import tansu_binary

from ...fixtures_eventbus import Certs, probe_once, sim, target_from
from ...fixtures_kafka import commit, create_topic, produce, tls_client
from ...helpers import self_signed_cert, value

__all__ = ["sim"]

TIMEOUT = 1.0
SECRET = "tls-sasl-s3cret-value"


def _prefix() -> str:
    return f"ts{uuid.uuid4().hex[:8]}"


def _target(bootstrap: str, prefix: str = "none", **extra: Any) -> KafkaTarget:
    fields = {
        "name": "secure",
        "bootstrap_servers": bootstrap,
        "interval": 2.0,
        "timeout": TIMEOUT,
        "groups": {"allow": [f"{prefix}-.*"]},
        "topics": {"allow": [f"{prefix}-.*"]},
    }
    return KafkaTarget.model_validate(fields | extra)


async def _runs(target: KafkaTarget, n: int = 2) -> tuple[list[RunOutcome], KafkaState]:
    """``n`` runs on one state (closed afterwards; its connections stay inspectable)."""
    state = KafkaState(target)
    try:
        return [await run_probe(KIND, target, state, TIMEOUT) for _ in range(n)], state
    finally:
        await state.aclose()


async def _canary_error(kafka: dict[str, Any]) -> ProbeError:
    """What starting the canary's Kafka clients fails with."""
    transport = make_transport(
        CanaryConfig.model_validate({"kafka": kafka}), "secure", TIMEOUT, None
    )
    try:
        with pytest.raises(ProbeError) as raised:
            await asyncio.wait_for(transport.start(), 10)
    finally:
        await transport.aclose()
    return raised.value


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "kafka-password"
    path.write_text(SECRET)
    return path


# --- TLS -------------------------------------------------------------------------------------


def test_tansu_cannot_serve_tls(tmp_path: Path, kafka_certs: Certs) -> None:
    """Fails when Tansu takes a certificate and key together: then test its own TLS."""
    broker = TansuBroker(tmp_path, extra=["--cert", str(kafka_certs.cert)])
    both = [*broker.command(), "--key", str(kafka_certs.key)]
    out = subprocess.run(both, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 2
    assert "the argument '--cert <CERT>' cannot be used with '--key <KEY>'" in out.stderr
    assert tansu_binary() == both[0]


@pytest.fixture
def cert_only_tansu(tmp_path: Path, kafka_certs: Certs) -> Iterator[TansuBroker]:
    """Tansu started with ``--cert`` alone, as it accepts: it serves plain Kafka."""
    broker = TansuBroker(tmp_path, extra=["--cert", str(kafka_certs.cert)]).start()
    yield broker
    broker.stop()


async def test_tls_to_a_broker_that_speaks_plain_is_timeout_on_every_run(
    cert_only_tansu: TansuBroker, kafka_certs: Certs
) -> None:
    """The broker reads the TLS ClientHello as the length of a Kafka request and
    waits for the rest: the handshake never ends. Every run says so, within its
    timeout; a plain client is served."""
    plain, _ = await _runs(_target(cert_only_tansu.bootstrap))
    assert plain[0].ok, plain[0].error
    tls = {"ca_file": str(kafka_certs.ca)}
    outcomes, _ = await _runs(_target(cert_only_tansu.bootstrap, tls=tls))
    assert [o.reason for o in outcomes] == ["timeout", "timeout"]
    assert all(o.duration < TIMEOUT + 0.2 for o in outcomes)
    assert "bootstrap failed: TimeoutError: no answer within" in str(outcomes[0].error)
    canary = {"bootstrap_servers": cert_only_tansu.bootstrap, "topic": "canary-tls", "tls": tls}
    error = await _canary_error(canary)
    assert error.reason == "timeout"
    assert "no answer within" in str(error)


async def test_the_probe_reads_lag_over_tls(tls_tansu: TLSTansu, kafka_certs: Certs) -> None:
    prefix = _prefix()
    topic, group = f"{prefix}-t", f"{prefix}-g"
    client = tls_client(kafka_certs.ca)
    await create_topic(tls_tansu.bootstrap, topic, 2, **client)
    await produce(tls_tansu.bootstrap, topic, {0: 3, 1: 2}, **client)
    await commit(tls_tansu.bootstrap, group, {(topic, 0): 1, (topic, 1): 2}, **client)
    target = _target(tls_tansu.bootstrap, prefix, tls={"ca_file": str(kafka_certs.ca)})
    state = KafkaState(target)
    try:
        outcomes = [await run_probe(KIND, target, state, TIMEOUT) for _ in range(2)]
        assert state.client is not None
        conns = list(state.client._conns.values())
        tls_objects = [c._writer.transport.get_extra_info("ssl_object") for c in conns]
    finally:
        await state.aclose()
    assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes]
    lag = {
        s.labels[1:]: s.value
        for s in outcomes[-1].samples
        if isinstance(s, Sample) and s.family is M.LAG
    }
    assert lag == {(group, topic, "0"): 2, (group, topic, "1"): 0}
    assert conns and all(isinstance(c, BoundedConnection) for c in conns)
    assert all(isinstance(t, ssl.SSLObject) for t in tls_objects)
    assert state.budget.used > 0


@pytest.mark.parametrize("fault", ["untrusted", "host name"])
async def test_a_certificate_that_does_not_verify_is_protocol(
    tls_tansu: TLSTansu, kafka_certs: Certs, tmp_path: Path, fault: str
) -> None:
    """Signed by another CA, or not naming the host connected to: the handshake is
    refused by the exporter, for the probe and the canary alike."""
    ca = kafka_certs.ca
    bootstrap = tls_tansu.bootstrap
    if fault == "untrusted":
        ca, _ = self_signed_cert(tmp_path)
        detail = "unable to get local issuer certificate"
    else:
        bootstrap = f"localhost:{tls_tansu.relay.port}"
        detail = "Hostname mismatch"
    outcomes, _ = await _runs(_target(bootstrap, tls={"ca_file": str(ca)}))
    assert [o.reason for o in outcomes] == ["protocol", "protocol"]
    assert "CERTIFICATE_VERIFY_FAILED" in str(outcomes[0].error)
    assert detail in str(outcomes[0].error)
    canary = {"bootstrap_servers": bootstrap, "topic": "canary-tls", "tls": {"ca_file": str(ca)}}
    error = await _canary_error(canary)
    assert error.reason == "protocol"
    assert detail in str(error)


async def test_the_canary_round_trips_over_tls(
    sim: EventBusSim, tls_tansu: TLSTansu, kafka_certs: Certs
) -> None:
    kafka = f"{{bootstrap_servers: '{tls_tansu.bootstrap}', topic: {_prefix()}-canary,"
    kafka += f" tls: {{ca_file: '{kafka_certs.ca}'}}}}"
    target = target_from(
        f"""
eventbus:
  - name: runtime
    url: "{sim.url}"
    interval: 3s
    timeout: 2s
    canary:
      kafka: {kafka}
      count: 2
"""
    )
    state = EventBusState(target)
    try:
        outs = [await probe_once(target, state) for _ in range(2)]
    finally:
        await state.aclose()
    assert [o.reason for o in outs] == [None, None], [o.error for o in outs]
    series = outs[-1].series
    assert value(series, "tradeops_eventbus_canary_received_total", target="runtime") == 4
    assert value(series, "tradeops_eventbus_canary_lost_total", target="runtime") == 0


# --- SASL ------------------------------------------------------------------------------------


def test_tansu_cannot_create_a_user_while_it_requires_one(sasl_tansu: TansuBroker) -> None:
    """Its own tool sends AlterUserScramCredentials unauthenticated, which a broker with
    ``--authentication`` refuses by closing the connection. Fails when that works:
    then test a successful SCRAM login against a real broker."""
    broker = f"tcp://{sasl_tansu.bootstrap}"
    cmd = [tansu_binary(), "user", "create", "--broker", broker, "monitor", SECRET]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode != 0
    assert 'UnexpectedEof, error: "early eof"' in out.stdout + out.stderr


@pytest.mark.parametrize(
    ("mechanism", "over", "spelling"),
    [
        ("SCRAM-SHA-256", "plain", "new"),
        ("SCRAM-SHA-512", "tls", "new"),
        ("SCRAM-SHA-512", "plain", "old"),
    ],
)
async def test_credentials_a_real_broker_refuses_are_auth(
    sasl_tansu: TansuBroker,
    tls_sasl_tansu: TLSTansu,
    kafka_certs: Certs,
    password_file: Path,
    mechanism: str,
    over: str,
    spelling: str,
) -> None:
    """The probe and the canary with the same connection settings (the canary's also in
    their deprecated spelling): both ``auth``."""
    tls = {"ca_file": str(kafka_certs.ca)} if over == "tls" else None
    bootstrap = tls_sasl_tansu.bootstrap if tls else sasl_tansu.bootstrap
    sasl = {"mechanism": mechanism, "username": "monitor", "password_file": str(password_file)}
    outcomes, _ = await _runs(_target(bootstrap, sasl=sasl, tls=tls))
    assert [o.reason for o in outcomes] == ["auth", "auth"], [str(o.error) for o in outcomes]
    assert f"the broker did not complete the {mechanism} exchange" in str(outcomes[0].error)
    canary: dict[str, Any] = {"bootstrap_servers": bootstrap, "sasl": sasl, "tls": tls}
    if spelling == "old":
        canary = {"bootstrap": bootstrap, "sasl_mechanism": mechanism, "tls": tls}
        canary |= {"username": "monitor", "password_file": str(password_file)}
    error = await _canary_error(canary | {"topic": "canary-sasl"})
    assert error.reason == "auth"
    assert all(SECRET not in text for text in (str(error), str(outcomes[0].error)))


async def test_a_mechanism_tansu_does_not_offer_is_protocol(
    sasl_tansu: TansuBroker, password_file: Path
) -> None:
    """Tansu offers SCRAM-SHA-256 and -512 (and OAUTHBEARER); asked for PLAIN it closes
    the connection instead of answering UNSUPPORTED_SASL_MECHANISM: a peer that
    hung up, which is ``protocol``, on every run."""
    sasl = {"mechanism": "PLAIN", "username": "monitor", "password_file": str(password_file)}
    outcomes, _ = await _runs(_target(sasl_tansu.bootstrap, sasl=sasl))
    assert [o.reason for o in outcomes] == ["protocol", "protocol"]
    assert "closed" in str(outcomes[0].error)
    canary = {"bootstrap_servers": sasl_tansu.bootstrap, "topic": "canary-sasl", "sasl": sasl}
    assert (await _canary_error(canary)).reason == "protocol"
