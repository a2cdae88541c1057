"""The active FIX probe against hostile peers (``tests.hostile``): one stable reason and
failure label per behaviour, one log line per episode, /metrics fast, no growth.

The peers are fakes: a real QuickFIX acceptor cannot be made to announce a 2 GB
message, drip a byte a second or flood Heartbeats. What the real acceptor does
(unknown CompID, wrong password) is in ``test_fix.py``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import statistics
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import simplefix

from exporter import config as cfg
from exporter.catalogue import fix as M
from exporter.logs import JsonFormatter, LogfmtFormatter
from exporter.probes.fix import KIND, FixState, FixTarget
from exporter.scheduler import RunOutcome, run_probe

from ..helpers import Running, eventually, report, value
from ..hostile import Behaviour, HostilePeer, Usage, hostile_peer, record_fault

Factory = Callable[..., Any]


def _message(msg_type: str, *fields: tuple[int, str | int], seq: int = 1) -> bytes:
    """A well-formed message from the venue (VENUE -> MONITOR)."""
    msg = simplefix.FixMessage()
    for tag, val in ((8, "FIX.4.4"), (35, msg_type), (49, "VENUE"), (56, "MONITOR"), (34, seq)):
        msg.append_pair(tag, val, header=True)
    msg.append_utc_timestamp(52, header=True)
    for tag, val in fields:
        msg.append_pair(tag, val)
    wire: bytes = msg.encode()
    return wire


LOGON = _message("A", (98, 0), (108, 30))
REJECTED = _message("5", (58, "Rejected Logon Attempt: invalid credentials"))
HUGE = b"8=FIX.4.4\x019=2000000000\x01"

# behaviour -> (what the peer answers, framework reason, FIX failure label)
CASES: dict[Behaviour, tuple[bytes, str, str]] = {
    "silent": (b"", "timeout", "timeout"),
    "close": (b"", "auth", "logon_rejected"),  # a close after the Logon: see _logon
    "garbage": (b"", "protocol", "garbled"),
    "stream": (b"", "protocol", "garbled"),
    "slow": (LOGON, "timeout", "timeout"),
    "huge": (HUGE, "protocol", "garbled"),
    "auth": (REJECTED, "auth", "logon_rejected"),
}


def _target(address: str, timeout: str = "900ms", extra: str = "") -> FixTarget:
    text = f"""
fix:
  - name: venue
    address: "{address}"
    sender_comp_id: MONITOR
    target_comp_id: VENUE
    interval: 1s
    timeout: {timeout}
{extra}
"""
    target = cfg.parse(text, "cfg.yml").targets["fix"][0]
    assert isinstance(target, FixTarget)
    return target


def _failure(out: RunOutcome) -> str | None:
    hot = [
        s.labels[1]
        for s in out.samples
        if getattr(s, "family", None) is M.PROBE_FAILURE and getattr(s, "value", 0) == 1
    ]
    assert len(hot) <= 1, hot
    return hot[0] if hot else None


async def _runs(target: FixTarget, state: FixState, n: int) -> list[RunOutcome]:
    return [await run_probe(KIND, target, state, target.timeout_s) for _ in range(n)]


@pytest.mark.parametrize("behaviour", list(CASES))
async def test_each_hostile_peer_has_one_stable_reason(behaviour: Behaviour) -> None:
    reply, reason, failure = CASES[behaviour]
    async with hostile_peer(behaviour, reply=reply) as peer:
        hangs = behaviour in ("silent", "slow")
        target = _target(peer.address, timeout="300ms") if hangs else _target(peer.address)
        state = FixState(target)
        runs = 3 if hangs else 20  # close and garbage are races
        outs = await _runs(target, state, runs)
    seen = {(o.reason, _failure(o)) for o in outs}
    assert seen == {(reason, failure)}, [(o.reason, _failure(o), str(o.error)) for o in outs]
    record_fault("fix", behaviour, reason)


async def test_huge_body_length_is_refused_without_buffering_it() -> None:
    async with hostile_peer("huge", reply=HUGE) as peer:
        target = _target(peer.address)
        state = FixState(target)
        out = (await _runs(target, state, 1))[0]
    assert (out.reason, _failure(out)) == ("protocol", "garbled")
    assert "BodyLength" in str(out.error)
    assert 0 < state.budget.used < 256 * 1024, state.budget.used  # charged, and not read on
    assert out.duration < 0.5


async def test_a_flood_of_valid_messages_is_cut_at_the_response_budget() -> None:
    """After its Logon the peer answers the TestRequest with Heartbeats for other ids,
    200 KiB of them: each is valid FIX, so only the budget stops the reading."""
    flood = b"".join(_message("0", (112, f"not-yours-{i}"), seq=i + 2) for i in range(2500))
    assert len(flood) > 200 * 1024
    async with hostile_peer("huge", reply=flood, replies=[lambda _: LOGON]) as peer:
        target = _target(peer.address, extra="    response_budget: 64KiB")
        state = FixState(target)
        out = (await _runs(target, state, 1))[0]
    assert out.reason == "protocol"
    assert "response budget of 64KiB" in str(out.error)
    assert _failure(out) == "garbled"


@asynccontextmanager
async def _closing_peer(abort: bool) -> AsyncIterator[int]:
    """Reads the Logon, then hangs up: a clean close (FIN) or an abort (RST). A fake:
    the real acceptor's unknown-CompID close (test_fix.py) is the clean one only."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        if abort:  # SO_LINGER 0: close() sends a RST instead of a FIN
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("abort", [False, True], ids=["fin", "rst"])
async def test_a_close_right_after_the_logon_is_always_logon_rejected(abort: bool) -> None:
    async with _closing_peer(abort) as port:
        target = _target(f"127.0.0.1:{port}")
        outs = await _runs(target, FixState(target), 30)
    seen = {(o.reason, _failure(o)) for o in outs}
    assert seen == {("auth", "logon_rejected")}, seen


def _config(peers: dict[str, HostilePeer]) -> str:
    rows = "".join(
        f'  - {{name: {name}, address: "{p.address}", sender_comp_id: MONITOR,'
        " target_comp_id: VENUE, interval: 600ms, timeout: 500ms}\n"
        for name, p in peers.items()
    )
    return "fix:\n" + rows


@asynccontextmanager
async def _all_peers() -> AsyncIterator[dict[str, HostilePeer]]:
    peers: dict[str, HostilePeer] = {}
    try:
        for behaviour, (reply, _, _) in CASES.items():
            peers[behaviour] = HostilePeer(behaviour, reply)
            await peers[behaviour].start()
        yield peers
    finally:
        for p in peers.values():
            await p.stop()


def _lines(records: list[logging.LogRecord]) -> Iterator[str]:
    for record in records:
        yield JsonFormatter().format(record)
        yield LogfmtFormatter().format(record)


async def test_many_failed_runs_log_once_and_metrics_stay_fast(
    exporter_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter")
    async with _all_peers() as peers:
        run: Running = await exporter_factory(_config(peers))

        async def five_runs_each() -> bool:
            m = await run.scrape()
            return all(
                (value(m, "tradeops_probe_runs_total", kind="fix", target=t) or 0) >= 5
                for t in peers
            )

        await eventually(five_runs_each, timeout=15)
        took = []
        for _ in range(20):
            start = time.perf_counter()
            m = await run.scrape()
            took.append(time.perf_counter() - start)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    for behaviour, (_, reason, failure) in CASES.items():
        assert value(m, "tradeops_up", kind="fix", target=behaviour) == 0
        errors = value(
            m, "tradeops_probe_errors_total", kind="fix", target=behaviour, reason=reason
        )
        assert (errors or 0) >= 4, (behaviour, errors)
        assert value(m, "tradeops_fix_probe_failure", session=behaviour, reason=failure) == 1
    per_target = sorted(r.fields["target"] for r in warnings)  # type: ignore[attr-defined]
    assert per_target == sorted(CASES), per_target
    longest = max(len(line) for line in _lines(warnings))
    assert longest < 2048, longest
    assert max(took) < 0.5, f"/metrics took {max(took):.3f}s"
    report(
        f"fix faults: /metrics median {statistics.median(took) * 1000:.1f} ms, "
        f"max {max(took) * 1000:.1f} ms with {len(CASES)} hostile targets; "
        f"longest log line {longest} characters"
    )


def _usage() -> Usage:
    gc.collect()
    return Usage.now()


@pytest.mark.parametrize("behaviour", ["close", "garbage"])
async def test_usage_plateaus_over_a_thousand_runs(behaviour: Behaviour) -> None:
    async with hostile_peer(behaviour) as peer:
        target = _target(peer.address)
        state = FixState(target)
        await _runs(target, state, 500)  # warm up: RSS settles after a few hundred runs
        usage = [_usage()]
        start = time.perf_counter()
        outs = await _runs(target, state, 500)
        usage.append(_usage())
        outs += await _runs(target, state, 500)
        elapsed = time.perf_counter() - start
        await asyncio.sleep(0.05)  # the peer's handlers finish
        usage.append(_usage())
    before, half, after = usage
    assert {o.reason for o in outs} == {CASES[behaviour][1]}
    assert after.fds <= before.fds + 2, usage
    assert after.tasks <= before.tasks + 2, usage
    assert after.threads == before.threads, usage
    # a leak grows with the runs; the pytest process around it moves RSS a little
    assert after.rss_bytes - half.rss_bytes < 4 << 20, usage
    assert after.rss_bytes - before.rss_bytes < 16 << 20, usage
    report(
        f"fix {behaviour} x1000: {elapsed:.2f} ms/run; fds {before.fds}->{after.fds}, "
        f"tasks {before.tasks}->{after.tasks}, threads {before.threads}->{after.threads}, "
        f"RSS {before.rss_bytes >> 20}->{half.rss_bytes >> 20}->{after.rss_bytes >> 20} MiB"
    )
