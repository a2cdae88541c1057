"""The Kafka probe against hostile peers: every misbehaviour is one stable reason,
one log line, a bounded exporter and a fast /metrics.

The peers are ``tests/hostile.py``'s fakes (a real broker cannot be made to announce
a 2 GB frame or to answer a byte a second). Where a peer must get past the handshake
first, it answers with responses encoded by aiokafka's own protocol classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.protocol.admin import (
    ApiVersionResponse_v0,
    SaslAuthenticateResponse_v1,
    SaslHandShakeResponse_v1,
)
from aiokafka.protocol.metadata import MetadataResponse_v1

from exporter.kinds.kafka import KIND
from exporter.kinds.kafka.config import KafkaTarget
from exporter.kinds.kafka.probe import KafkaState
from exporter.scheduler import run_probe
from stack import Tansu, free_port

from ... import faults
from ...helpers import Running, report, scrape_until
from ...hostile import Behaviour, HostilePeer, Usage, hostile_peer

Factory = Callable[..., Any]
SASL_FAILED = 58  # SASL_AUTHENTICATION_FAILED


# --- Kafka's framing, for the peers ----------------------------------------------------


def frame(correlation_id: int, body: bytes) -> bytes:
    """A response frame: size, correlation id (response header v0), body."""
    payload = struct.pack(">i", correlation_id) + body
    return struct.pack(">i", len(payload)) + payload


def correlation_id(request: bytes) -> int:
    """The correlation id of a request frame (size, api key, api version, id, ...)."""
    return int(struct.unpack(">i", request[8:12])[0])


def api_versions(request: bytes) -> bytes:
    """ApiVersions v0: SaslHandshake and SaslAuthenticate v0-1, Metadata v0-1."""
    versions = [(18, 0, 0), (17, 0, 1), (36, 0, 1), (3, 0, 1)]
    return frame(correlation_id(request), ApiVersionResponse_v0(0, versions).encode())


def sasl_handshake(request: bytes) -> bytes:
    """SaslHandshake v1: PLAIN is enabled."""
    return frame(correlation_id(request), SaslHandShakeResponse_v1(0, ["PLAIN"]).encode())


def sasl_failed(correlation: int = 3) -> bytes:
    """SaslAuthenticate v1 failing with SASL_AUTHENTICATION_FAILED (the third request
    on a connection: after ApiVersions and SaslHandshake)."""
    body = SaslAuthenticateResponse_v1(
        SASL_FAILED, "Authentication failed: Invalid username or password", b"", 0
    ).encode()
    return frame(correlation, body)


def tiny_metadata(size: int, port: int) -> Callable[[bytes], bytes]:
    """An answer to Metadata v1 of ``size`` bytes: one broker (127.0.0.1:``port``) and
    topics with empty names and no partitions, the most elements per byte (9 bytes
    each), the slowest to decode. Encoded once, beforehand: encoding takes seconds,
    on the loop the test measures."""
    count = (size - 64) // 9
    body = MetadataResponse_v1([(0, "127.0.0.1", port, None)], 0, [(0, "", False, [])] * count)
    encoded = frame(0, body.encode())

    def reply(request: bytes) -> bytes:
        return encoded[:4] + request[8:12] + encoded[8:]

    return reply


REPLIES: dict[Behaviour, bytes] = {
    "huge": struct.pack(">i", 0x7FFFFFFF),
    "auth": sasl_failed(),
}
HANDSHAKES: dict[Behaviour, list[Callable[[bytes], bytes]]] = {
    "auth": [api_versions, sasl_handshake],
}


@contextlib.asynccontextmanager
async def kafka_peer(behaviour: Behaviour) -> AsyncIterator[HostilePeer]:
    """A hostile peer speaking as much Kafka as ``behaviour`` needs."""
    reply, replies = REPLIES.get(behaviour, b""), HANDSHAKES.get(behaviour, [])
    async with hostile_peer(behaviour, reply=reply, replies=replies) as peer:
        yield peer


# --- helpers -----------------------------------------------------------------------------


def _sasl(password_file: Path) -> str:
    return f'    sasl: {{mechanism: PLAIN, username: monitor, password_file: "{password_file}"}}\n'


def _config(address: str, extra: str = "", interval: str = "400ms", timeout: str = "300ms") -> str:
    fields = {"bootstrap_servers": address, "interval": interval, "timeout": timeout}
    return faults.target_yaml("kafka", fields, extra)


def _target(address: str, **extra: Any) -> KafkaTarget:
    fields = {"name": "hostile", "bootstrap_servers": address, "interval": 1.0, "timeout": 0.5}
    return KafkaTarget.model_validate(fields | extra)


# --- the fault matrix ------------------------------------------------------------------


@pytest.mark.parametrize("behaviour", list(faults.STANDARD_REASONS))
async def test_a_hostile_peer_is_one_stable_reason_and_one_log_line(
    behaviour: Behaviour,
    tmp_path: Path,
    exporter_factory: Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="exporter")
    secret = "hostile-s3cret-pw"
    (tmp_path / "pw").write_text(secret)
    extra = _sasl(tmp_path / "pw") if behaviour == "auth" else ""
    async with kafka_peer(behaviour) as peer:
        slow = behaviour in ("silent", "slow")  # the others fail in milliseconds
        timing = ("400ms", "300ms") if slow else ("600ms", "550ms")
        run: Running = await exporter_factory(_config(peer.address, extra, *timing))
        reason = faults.STANDARD_REASONS[behaviour]
        await faults.check_one_episode(
            run, caplog, "kafka", behaviour, reason, "tradeops_kafka_brokers"
        )
    faults.assert_not_logged(caplog.records, secret)


class AuthenticatingTansu(Tansu):
    """A real Tansu that requires SASL (SCRAM) and knows no user: every login fails."""

    def command(self) -> list[str]:
        return [*super().command(), "--authentication"]


async def test_a_real_broker_refusing_the_credentials_is_auth(
    tmp_path: Path, exporter_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="exporter")
    secret = "not-a-known-s3cret"
    (tmp_path / "pw").write_text(secret)
    broker = AuthenticatingTansu(tmp_path / "broker").start()
    try:
        extra = (
            "    sasl: {mechanism: SCRAM-SHA-512, username: monitor,"
            f' password_file: "{tmp_path / "pw"}"}}\n'
        )
        run: Running = await exporter_factory(_config(broker.bootstrap, extra))
        m = await scrape_until(
            run, lambda m: faults.runs_of(m, "kafka", "hostile") >= 4, timeout=15
        )
        failures = faults.warnings_for(caplog.records, "kafka", "hostile")
    finally:
        broker.stop()
    assert faults.errors_of(m, "kafka", "hostile") == {
        "auth": faults.runs_of(m, "kafka", "hostile")
    }
    assert len(failures) == 1
    assert "SCRAM-SHA-512" in failures[0].fields["error"]
    faults.assert_not_logged(caplog.records, secret)


async def test_nothing_listening_is_refused_on_every_run() -> None:
    target = _target(f"127.0.0.1:{free_port()}")
    outcomes, _ = await faults.fresh_runs(KIND, target, 5)
    assert faults.same_reason(outcomes) == "refused"


async def test_a_huge_frame_is_refused_before_it_is_read() -> None:
    """A 4-byte size of 0x7fffffff in reply to the first request, then filler without
    end: refused at the size, so the run ends at once and nothing is buffered."""
    sampler = faults.RssPeak()
    async with kafka_peer("huge") as peer:
        target = _target(peer.address, timeout=1.0)
        outcomes, state = await faults.fresh_runs(KIND, target, 3)
        used, sent = state.budget.used, peer.sent
    peak = sampler.stop()
    durations = [o.duration for o in outcomes]
    report(
        f"kafka huge frame: {sent / faults.MIB:.1f} MB sent by the peer in 3 runs,"
        f" {used} bytes read in the last;"
        f" runs {statistics.median(durations) * 1000:.0f} ms (median);"
        f" RSS peak +{peak / faults.MIB:.1f} MB"
    )
    assert faults.same_reason(outcomes) == "protocol"
    assert "2147483647-byte" in str(outcomes[0].error)
    assert used < faults.MIB, "the frame was not read"
    assert max(durations) < 0.5, durations
    assert peak < faults.PEAK_MARGIN, f"RSS grew {peak / faults.MIB:.0f} MB"


async def test_a_frame_of_tiny_elements_holds_the_loop_briefly() -> None:
    """A peer that passes the handshake and answers Metadata (the bootstrap's and the
    cycle's) with the largest frame the default budget lets through, all tiny
    elements (the slowest to decode), then garbage: the loop is never held long."""
    target = _target("127.0.0.1:1")
    state = KafkaState(target)
    await run_probe(KIND, target, state, 0.1)  # sizes the budget as the scheduler does
    largest = state.frame_limit()
    await state.aclose()
    async with hostile_peer("garbage") as peer:
        peer.replies[:] = [api_versions, tiny_metadata(largest, peer.port)]  # each connection
        target = _target(peer.address, timeout=8.0)
        state = KafkaState(target)
        holds = faults.LoopHolds()
        try:
            outcome = await run_probe(KIND, target, state, 8.0)
        finally:
            loop_holds = await holds.stop()
            await state.aclose()
    report(
        f"kafka Metadata frames of {largest / faults.MIB:.1f} MiB of tiny elements:"
        f" event-loop holds {loop_holds}; run {outcome.reason} in {outcome.duration:.2f} s"
    )
    assert outcome.reason == "protocol", outcome.error  # the garbage after two frames
    assert "ListGroups" in str(outcome.error), "both frames were decoded"
    assert loop_holds.max < 0.5, f"the loop was held {loop_holds.max * 1000:.0f} ms"


@pytest.mark.parametrize("behaviour", ["close", "garbage"])
async def test_a_thousand_failed_runs_hold_no_resources(behaviour: Behaviour) -> None:
    """fds, tasks, threads and RSS at a plateau over ~1000 fast failed runs."""
    async with kafka_peer(behaviour) as peer:
        target = _target(peer.address)
        flat = await faults.fresh_plateau(KIND, target, warmup=50)
    report(f"kafka {behaviour}: {flat}")
    assert flat.same_reason() == faults.STANDARD_REASONS[behaviour]
    flat.assert_flat()


async def test_runs_cut_at_the_deadline_leave_no_connection_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A peer that answers the handshake and then nothing: every run ends at its
    deadline inside the bootstrap, and closes the connection it was waiting on
    (aiokafka's bootstrap leaves it to the garbage collector, which complains)."""
    caplog.set_level(logging.ERROR, logger="asyncio")
    async with hostile_peer("silent", replies=[api_versions]) as peer:
        target = _target(peer.address, timeout=0.2)
        state = KafkaState(target)
        try:
            before = Usage.now()
            outcomes = await faults.repeat(KIND, target, state, 10)
            await asyncio.sleep(0.05)
            after = Usage.now()
        finally:
            await state.aclose()
    assert faults.same_reason(outcomes) == "timeout"
    assert after.fds <= before.fds + 1, (before.fds, after.fds)
    unclosed = [r for r in caplog.records if "Unclosed AIOKafkaConnection" in r.getMessage()]
    assert unclosed == []
