"""The active FIX probe against hostile peers (``tests.hostile``): one stable reason and
failure label per behaviour, one log line per episode, /metrics fast, no growth.

The peers are fakes: a real QuickFIX acceptor cannot be made to announce a 2 GB
message, drip a byte a second or flood Heartbeats. What the real acceptor does
(unknown CompID, wrong password) is in ``test_fix.py``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import simplefix

from exporter.kinds.fix import KIND, FixTarget
from exporter.kinds.fix import metrics as M
from exporter.scheduler import RunOutcome

from ... import faults
from ...helpers import Running, report, scrape_until, value
from ...hostile import Behaviour, hostile_peer, hostile_peers, record_fault

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
    return faults.parse_target(text, "fix", FixTarget)


def _failure(out: RunOutcome) -> str | None:
    hot = [
        s.labels[1]
        for s in out.samples
        if getattr(s, "family", None) is M.PROBE_FAILURE and getattr(s, "value", 0) == 1
    ]
    assert len(hot) <= 1, hot
    return hot[0] if hot else None


@pytest.mark.parametrize("behaviour", list(CASES))
async def test_each_hostile_peer_has_one_stable_reason(behaviour: Behaviour) -> None:
    reply, reason, failure = CASES[behaviour]
    async with hostile_peer(behaviour, reply=reply) as peer:
        hangs = behaviour in ("silent", "slow")
        target = _target(peer.address, timeout="300ms") if hangs else _target(peer.address)
        runs = 3 if hangs else 20  # close and garbage are races
        outs, _ = await faults.fresh_runs(KIND, target, runs)
    assert faults.same_reason(outs) == reason
    assert {_failure(o) for o in outs} == {failure}, [(_failure(o), str(o.error)) for o in outs]
    record_fault("fix", behaviour, reason)


async def test_huge_body_length_is_refused_without_buffering_it() -> None:
    async with hostile_peer("huge", reply=HUGE) as peer:
        target = _target(peer.address)
        (out,), state = await faults.fresh_runs(KIND, target, 1)
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
        (out,), _ = await faults.fresh_runs(KIND, target, 1)
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
        outs, _ = await faults.fresh_runs(KIND, target, 30)
    assert faults.same_reason(outs) == "auth"
    assert {_failure(o) for o in outs} == {"logon_rejected"}


async def test_many_failed_runs_log_once_and_metrics_stay_fast(
    exporter_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter")
    async with hostile_peers({b: (b, reply) for b, (reply, _, _) in CASES.items()}) as peers:
        addresses = {name: f'address: "{p.address}"' for name, p in peers.items()}
        common = "sender_comp_id: MONITOR, target_comp_id: VENUE, interval: 600ms, timeout: 500ms"
        run: Running = await exporter_factory(faults.targets_yaml("fix", addresses, common))
        await scrape_until(run, faults.each_ran("fix", peers, 5), timeout=15)
        expected: dict[str, str] = {b: reason for b, (_, reason, _) in CASES.items()}
        scrapes, longest = await faults.check_one_warning_each(run, "fix", expected, caplog.records)
    for behaviour, (_, _, failure) in CASES.items():
        failed = value(
            scrapes.last, "tradeops_fix_probe_failure", session=behaviour, reason=failure
        )
        assert failed == 1, behaviour
    report(
        f"fix faults: /metrics {scrapes.latency} with {len(CASES)} hostile targets;"
        f" longest log line {longest} characters"
    )


@pytest.mark.parametrize("behaviour", ["close", "garbage"])
async def test_usage_plateaus_over_a_thousand_runs(behaviour: Behaviour) -> None:
    async with hostile_peer(behaviour) as peer:
        target = _target(peer.address)
        # warm-up: RSS settles after a few hundred runs
        flat = await faults.fresh_plateau(KIND, target, warmup=500)
    report(f"fix {behaviour}: {flat}")
    assert flat.same_reason() == CASES[behaviour][1]
    flat.assert_flat()
