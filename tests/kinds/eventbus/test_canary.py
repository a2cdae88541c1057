"""The event-bus canary through the probe: round trips through the real Kafka-protocol
broker and real Redis, losses while the broker is down, recovery, ordering, stream
trimming, and refused credentials. The canary's sections use the Kafka and Redis
kinds' connection schema; the old Kafka spellings are tested here too (on the wire)
and in ``test_legacy.py`` (the mapping)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.kinds.eventbus.config import EventBusTarget
from exporter.kinds.eventbus.probe import EventBusState
from exporter.kinds.eventbus.tracker import encode
from stack import Redis, Tansu, free_port
from stack.sim_eventbus import EventBusSim

from ...fixtures_eventbus import Outcome, probe_once, sim, target_from
from ...helpers import Running, eventually, scrape_until, self_signed_cert, value
from ..kafka.test_kafka_faults import AuthenticatingTansu

__all__ = ["sim"]

Factory = Callable[..., Any]
T = {"target": "runtime"}


def _yaml(url: str, canary: str, timeout: str = "2s", interval: str = "3s") -> str:
    return f"""
eventbus:
  - name: runtime
    url: "{url}"
    interval: {interval}
    timeout: {timeout}
    canary:
{canary}
"""


def _kafka(bootstrap: str, topic: str, extra: str = "", spelling: str = "new") -> str:
    servers = "bootstrap_servers" if spelling == "new" else "bootstrap"
    return f"      kafka: {{{servers}: '{bootstrap}', topic: {topic}}}\n{extra}"


def _redis(address: str, extra: str = "") -> str:
    return f"      redis: {{address: '{address}', maxlen: 10}}\n{extra}"


async def _runs(target: EventBusTarget, state: EventBusState, n: int) -> Outcome:
    out = None
    for _ in range(n):
        out = await probe_once(target, state)
        assert out.reason is None, out.error
    assert out is not None
    return out


def _assert_round_trips(m: Any, n: int) -> None:
    assert value(m, "tradeops_eventbus_canary_sent_total", **T) == n
    assert value(m, "tradeops_eventbus_canary_received_total", **T) == n
    assert value(m, "tradeops_eventbus_canary_lost_total", **T) == 0
    assert value(m, "tradeops_eventbus_canary_out_of_order_total", **T) == 0
    assert value(m, "tradeops_eventbus_canary_roundtrip_seconds_count", **T) == n
    inf = value(m, "tradeops_eventbus_canary_roundtrip_seconds_bucket", **T, le="+Inf")
    assert inf == n
    last = value(m, "tradeops_eventbus_canary_last_roundtrip_seconds", **T)
    assert last is not None and 0 < last < 2
    total = value(m, "tradeops_eventbus_canary_roundtrip_seconds_sum", **T)
    assert total is not None and last <= total
    seen = value(m, "tradeops_eventbus_canary_last_success_timestamp_seconds", **T)
    assert seen is not None and abs(seen - time.time()) < 10


@pytest.mark.parametrize("spelling", ["new", "old"])
async def test_round_trip_through_kafka(
    sim: EventBusSim, tansu_server: Tansu, spelling: str
) -> None:
    kafka = _kafka(tansu_server.bootstrap, f"canary-rt-{spelling}", "      count: 2", spelling)
    target = target_from(_yaml(sim.url, kafka))
    before = asyncio.all_tasks()
    state = EventBusState(target)
    try:
        out = await _runs(target, state, 3)
        _assert_round_trips(out.series, 6)
        # the health part still reports alongside the canary
        assert value(out.series, "tradeops_eventbus_subscribers", **T) == 2
    finally:
        await state.aclose()
    await asyncio.sleep(0)
    leaked = [t.get_name() for t in asyncio.all_tasks() - before if not t.done()]
    assert leaked == []


async def test_round_trip_through_redis_and_stream_is_trimmed(
    sim: EventBusSim, redis_server: Redis
) -> None:
    target = target_from(_yaml(sim.url, _redis(redis_server.address, "      count: 4")))
    state = EventBusState(target)
    try:
        _redis_cmd(redis_server, "XADD", "tradeops:eventbus:canary:runtime", "*", "canary", "junk")
        out = await _runs(target, state, 5)
        _assert_round_trips(out.series, 20)
        length = _redis_cmd(redis_server, "XLEN", "tradeops:eventbus:canary:runtime")
        assert length == b":10"  # maxlen 10, exact trimming
    finally:
        await state.aclose()


async def test_health_endpoint_down_keeps_the_canary_series(redis_server: Redis) -> None:
    """Each part reports what it knows: a refused health endpoint fails the run without
    hiding the canary's round trips, and no health series is invented."""
    url = f"http://127.0.0.1:{free_port()}/health"
    target = target_from(_yaml(url, _redis(redis_server.address, "      count: 2")))
    state = EventBusState(target)
    try:
        out = await probe_once(target, state)
        assert out.reason == "refused", out.error
        assert "health endpoint" in out.error
        assert value(out.series, "tradeops_eventbus_canary_received_total", **T) == 2
        assert value(out.series, "tradeops_eventbus_canary_lost_total", **T) == 0
        assert value(out.series, "tradeops_eventbus_queue_depth", **T) is None
        assert value(out.series, "tradeops_eventbus_http_status_code", **T) is None
    finally:
        await state.aclose()


async def test_out_of_order_delivery_is_counted(sim: EventBusSim, redis_server: Redis) -> None:
    """Forges a stale canary of this probe onto the real stream, because a single Redis
    stream never reorders entries by itself."""
    target = target_from(_yaml(sim.url, _redis(redis_server.address)))
    state = EventBusState(target)
    try:
        await _runs(target, state, 3)
        stale = encode(state.instance, "runtime", 0).decode()
        _redis_cmd(redis_server, "XADD", "tradeops:eventbus:canary:runtime", "*", "canary", stale)
        out = await _runs(target, state, 1)
        assert value(out.series, "tradeops_eventbus_canary_out_of_order_total", **T) == 1
        assert value(out.series, "tradeops_eventbus_canary_received_total", **T) == 4
    finally:
        await state.aclose()


async def test_broker_stopped_counts_losses_then_recovers(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    broker = Tansu(tmp_path).start()
    s = await EventBusSim(rate=5).start()
    try:
        run: Running = await exporter_factory(
            _yaml(
                s.url,
                _kafka(broker.bootstrap, "canary-outage", "      deadline: 500ms"),
                timeout="800ms",
                interval="1s",
            )
        )

        async def metric(name: str, **labels: str) -> float:
            return value(await run.scrape(), name, **labels) or 0

        async def up(v: float) -> bool:
            return await metric("tradeops_up", kind="eventbus", target="runtime") == v

        async def received_at_least(n: float) -> bool:
            return await metric("tradeops_eventbus_canary_received_total", **T) >= n

        await eventually(lambda: received_at_least(1), timeout=15)
        received_before = await metric("tradeops_eventbus_canary_received_total", **T)
        broker.kill()  # SIGTERM would let tansu serve open connections for 5 s more
        # the run fails, but the losses show while the transport is down, and the
        # health endpoint (still answering) keeps its series
        m = await scrape_until(
            run,
            lambda m: (
                value(m, "tradeops_up", kind="eventbus", target="runtime") == 0
                and (value(m, "tradeops_eventbus_canary_lost_total", **T) or 0) >= 1
            ),
            timeout=10,
        )
        assert value(m, "tradeops_eventbus_queue_depth", **T) is not None
        assert value(m, "tradeops_eventbus_running", **T) == 1
        lost_while_down = value(m, "tradeops_eventbus_canary_lost_total", **T) or 0
        fails = sum(
            value(m, "tradeops_probe_errors_total", kind="eventbus", target="runtime", reason=r)
            or 0
            for r in ("refused", "timeout", "protocol")
        )
        assert fails >= 1

        broker.start()
        await eventually(lambda: up(1), timeout=20)
        m = await scrape_until(
            run,
            lambda m: (
                (value(m, "tradeops_eventbus_canary_received_total", **T) or 0)
                >= received_before + 1
            ),
        )
        lost = value(m, "tradeops_eventbus_canary_lost_total", **T)
        sent = value(m, "tradeops_eventbus_canary_sent_total", **T)
        received = value(m, "tradeops_eventbus_canary_received_total", **T)
        assert lost is not None and lost >= lost_while_down  # a counter: never withdrawn
        assert sent is not None and received is not None
        assert sent >= received + lost  # every canary is received, lost or in flight
    finally:
        await s.stop()
        broker.kill()  # a graceful stop waits 5 s for the exporter's open connections


def _redis_cmd(server: Redis, *args: str) -> bytes:
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(payload.encode())
        return sock.recv(4096).strip()


async def test_redis_down_loses_canaries_and_both_failures_are_named(
    sim: EventBusSim, redis_server: Redis
) -> None:
    target = target_from(_yaml(sim.url, _redis(redis_server.address), timeout="1s"))
    state = EventBusState(target)
    try:
        await _runs(target, state, 1)
        redis_server.stop()
        out = await probe_once(target, state)
        assert out.reason == "refused"
        assert out.error.startswith("canary via redis: ")
        await sim.stop()  # now the health endpoint is down too
        out = await probe_once(target, state)
        assert out.reason == "refused"
        assert out.error.startswith("health endpoint: ")
        assert "; and canary via redis: " in out.error
        await sim.start()
        redis_server.start()
        out = await _runs(target, state, 1)
        m = out.series
        assert value(m, "tradeops_eventbus_canary_sent_total", **T) == 4
        assert value(m, "tradeops_eventbus_canary_lost_total", **T) == 2
        assert value(m, "tradeops_eventbus_canary_received_total", **T) == 2
    finally:
        await state.aclose()


async def test_round_trip_through_redis_over_tls(sim: EventBusSim, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    server = Redis(tmp_path, tls=(cert, key)).start()
    redis = f"      redis: {{address: '{server.address}', maxlen: 10, tls: {{ca_file: {cert}}}}}\n"
    target = target_from(_yaml(sim.url, redis))
    state = EventBusState(target)
    try:
        out = await _runs(target, state, 2)
        _assert_round_trips(out.series, 2)
    finally:
        await state.aclose()
        server.stop()


@pytest.mark.parametrize(
    "sasl",
    [
        "sasl: {mechanism: SCRAM-SHA-512, username: u, password_file: '{pw}'}",
        "sasl_mechanism: SCRAM-SHA-512, username: u, password_file: '{pw}'",
    ],
    ids=["new", "old"],
)
async def test_a_broker_refusing_the_canarys_credentials_is_auth(
    sim: EventBusSim, tmp_path: Path, sasl: str
) -> None:
    """A real Tansu that requires SCRAM and knows no user, through the event-bus probe."""
    broker = AuthenticatingTansu(tmp_path / "broker").start()
    (tmp_path / "pw").write_text("not-a-known-pw")
    servers = "bootstrap_servers" if sasl.startswith("sasl:") else "bootstrap"
    sasl = sasl.replace("{pw}", str(tmp_path / "pw"))
    canary = f"      kafka: {{{servers}: '{broker.bootstrap}', topic: canary-auth, {sasl}}}\n"
    target = target_from(_yaml(sim.url, canary))
    state = EventBusState(target)
    try:
        outs = [await probe_once(target, state) for _ in range(2)]
    finally:
        await state.aclose()
        broker.stop()
    assert [o.reason for o in outs] == ["auth", "auth"], [o.error for o in outs]
    assert "canary via kafka: " in outs[0].error
