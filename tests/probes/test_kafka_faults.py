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
import os
import statistics
import struct
import threading
import time
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

from exporter.probes.kafka import KIND, KafkaState, KafkaTarget
from exporter.scheduler import run_probe
from stack import Tansu, free_port

from ..helpers import Running, Series, report, scrape_until, value, with_label
from ..hostile import Behaviour, HostilePeer, Usage, hostile_peer, record_fault

Factory = Callable[..., Any]
MB = 1 << 20
KIB = 1 << 10
SASL_FAILED = 58  # SASL_AUTHENTICATION_FAILED
EXPECTED: dict[Behaviour, str] = {
    "silent": "timeout",
    "close": "protocol",
    "garbage": "protocol",
    "stream": "protocol",
    "slow": "timeout",
    "huge": "protocol",
    "auth": "auth",
}


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
    return f"""
kafka:
  - name: hostile
    bootstrap_servers: {address}
    interval: {interval}
    timeout: {timeout}
{extra}
"""


def _target(address: str, **extra: Any) -> KafkaTarget:
    fields = {"name": "hostile", "bootstrap_servers": address, "interval": 1.0, "timeout": 0.5}
    return KafkaTarget.model_validate(fields | extra)


def _runs(m: Series, target: str = "hostile") -> float:
    return value(m, "tradeops_probe_runs_total", kind="kafka", target=target) or 0


def _errors(m: Series, target: str = "hostile") -> dict[str, float]:
    found = with_label(m, "tradeops_probe_errors_total", kind="kafka", target=target)
    return {dict(k)["reason"]: v for k, v in found.items() if v}


def _failures(caplog: pytest.LogCaptureFixture, target: str = "hostile") -> list[logging.LogRecord]:
    """The WARNING "probe failed" lines for ``target``."""
    return [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING
        and r.getMessage() == "probe failed"
        and getattr(r, "fields", {}).get("target") == target
    ]


async def _scrape_times(run: Running, n: int = 20) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        await run.scrape()
        times.append(time.perf_counter() - start)
    return times


def _quantiles(xs: list[float]) -> str:
    """median / p99 / max in milliseconds."""
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    return (
        f"median {statistics.median(xs) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms,"
        f" max {xs[-1] * 1000:.1f} ms"
    )


class _RssPeak(threading.Thread):
    """Samples the process's resident set every 5 ms from a thread, so a loop busy
    buffering a frame does not hide the peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.start_rss = self.rss()
        self.peak = self.start_rss
        self._done = threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self.rss())

    def stop(self) -> int:
        """Stop sampling; the peak growth above the start, in bytes."""
        self._done.set()
        self.join()
        return self.peak - self.start_rss


class _LoopHolds:
    """A task that sleeps 1 ms in a loop and records how late it wakes: the longest
    time anything held the event loop."""

    def __init__(self) -> None:
        self.holds: list[float] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            self.holds.append(time.perf_counter() - start - 0.001)

    async def stop(self) -> list[float]:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.holds


# --- the fault matrix ------------------------------------------------------------------


@pytest.mark.parametrize("behaviour", list(EXPECTED))
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
        m = await scrape_until(run, lambda m: _runs(m) >= 5, timeout=15)
        errors = _errors(m)
        record_fault("kafka", behaviour, "/".join(sorted(errors)))
        assert set(errors) == {EXPECTED[behaviour]}, errors
        assert errors[EXPECTED[behaviour]] == _runs(m), "every run failed, for the same reason"
        assert value(m, "tradeops_up", kind="kafka", target="hostile") == 0
        assert with_label(m, "tradeops_kafka_brokers") == {}
        times = await _scrape_times(run)
        assert max(times) < 0.2, f"/metrics: {_quantiles(times)}"
        failures = _failures(caplog)  # before the peer goes away (then: refused)
    assert len(failures) == 1, [getattr(r, "fields", {}) for r in failures]
    assert failures[0].fields["reason"] == EXPECTED[behaviour]  # type: ignore[attr-defined]
    assert len(failures[0].getMessage() + str(failures[0].fields)) < 2048  # type: ignore[attr-defined]
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(getattr(record, "fields", ""))


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
        m = await scrape_until(run, lambda m: _runs(m) >= 4, timeout=15)
        failures = _failures(caplog)
    finally:
        broker.stop()
    assert _errors(m) == {"auth": _runs(m)}
    assert len(failures) == 1
    assert "SCRAM-SHA-512" in failures[0].fields["error"]  # type: ignore[attr-defined]
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(getattr(record, "fields", ""))


async def test_nothing_listening_is_refused_on_every_run() -> None:
    target = _target(f"127.0.0.1:{free_port()}")
    state = KafkaState(target)
    try:
        reasons = [(await run_probe(KIND, target, state, 0.5)).reason for _ in range(5)]
    finally:
        await state.aclose()
    assert reasons == ["refused"] * 5


async def test_a_huge_frame_is_refused_before_it_is_read() -> None:
    """A 4-byte size of 0x7fffffff in reply to the first request, then filler without
    end: refused at the size, so the run ends at once and nothing is buffered."""
    sampler = _RssPeak()
    sampler.start()
    async with kafka_peer("huge") as peer:
        target = _target(peer.address, timeout=1.0)
        state = KafkaState(target)
        try:
            outcomes = [await run_probe(KIND, target, state, 1.0) for _ in range(3)]
            used = state.budget.used
        finally:
            await state.aclose()
        sent = peer.sent
    peak = sampler.stop()
    durations = [o.duration for o in outcomes]
    report(
        f"kafka huge frame: {sent / MB:.1f} MB sent by the peer in 3 runs, {used} bytes read"
        f" in the last; runs {statistics.median(durations) * 1000:.0f} ms (median);"
        f" RSS peak +{peak / MB:.1f} MB"
    )
    assert [o.reason for o in outcomes] == ["protocol"] * 3
    assert "2147483647-byte" in str(outcomes[0].error)
    assert used < MB, "the frame was not read"
    assert max(durations) < 0.5, durations
    assert peak < 50 * MB, f"RSS grew {peak / MB:.0f} MB"


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
        holds = _LoopHolds()
        try:
            outcome = await run_probe(KIND, target, state, 8.0)
        finally:
            loop_holds = await holds.stop()
            await state.aclose()
    report(
        f"kafka Metadata frames of {largest / MB:.1f} MiB of tiny elements: event-loop holds"
        f" {_quantiles(loop_holds)}; run {outcome.reason} in {outcome.duration:.2f} s"
    )
    assert outcome.reason == "protocol", outcome.error  # the garbage after two frames
    assert "ListGroups" in str(outcome.error), "both frames were decoded"
    assert max(loop_holds) < 0.5, f"the loop was held {max(loop_holds) * 1000:.0f} ms"


@pytest.mark.parametrize("behaviour", ["close", "garbage"])
async def test_a_thousand_failed_runs_hold_no_resources(behaviour: Behaviour) -> None:
    """fds, tasks, threads and RSS at a plateau over ~1000 fast failed runs."""
    async with kafka_peer(behaviour) as peer:
        target = _target(peer.address)
        state = KafkaState(target)
        reasons: set[str | None] = set()
        try:
            # each run fails within milliseconds; the long deadline only keeps a stall
            # of this busy machine from turning one of them into a timeout
            for _ in range(50):  # warm-up: caches, first allocations
                reasons.add((await run_probe(KIND, target, state, 2.0)).reason)
            before = Usage.now()
            start = time.perf_counter()
            for _ in range(1000):
                reasons.add((await run_probe(KIND, target, state, 2.0)).reason)
            elapsed = time.perf_counter() - start
            after = Usage.now()
        finally:
            await state.aclose()
    report(
        f"kafka 1000 runs against {behaviour}: {elapsed:.1f} s; fds {before.fds}->{after.fds},"
        f" tasks {before.tasks}->{after.tasks}, threads {before.threads}->{after.threads},"
        f" RSS {before.rss_bytes / MB:.0f}->{after.rss_bytes / MB:.0f} MB"
    )
    assert reasons == {EXPECTED[behaviour]}
    assert after.fds <= before.fds + 3
    assert after.tasks <= before.tasks + 2
    assert after.threads <= before.threads + 1
    assert after.rss_bytes - before.rss_bytes < 20 * MB


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
            reasons = {(await run_probe(KIND, target, state, 0.2)).reason for _ in range(10)}
            await asyncio.sleep(0.05)
            after = Usage.now()
        finally:
            await state.aclose()
    assert reasons == {"timeout"}
    assert after.fds <= before.fds + 1, (before.fds, after.fds)
    unclosed = [r for r in caplog.records if "Unclosed AIOKafkaConnection" in r.getMessage()]
    assert unclosed == []
