"""Passive FIX reader on files written by a real QuickFIX acceptor during the test."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from stack import sim_fix
from stack.fix import FixAcceptor

from ...fixtures_fix import MONITOR_PASSWORD, fix_acceptor
from ...helpers import Running, Series, eventually, scrape_until, value

__all__ = ["fix_acceptor"]

Factory = Callable[..., Any]
S = {"session": "sim"}


def _config(acceptor: FixAcceptor) -> str:
    return f"""
fix_store:
  - name: sim
    store_path: "{acceptor.store_dir}"
    log_path: "{acceptor.log_dir}"
    sender_comp_id: VENUE
    target_comp_id: SIM
    interval: 500ms
    timeout: 400ms
"""


def _until(run: Running, check: Callable[[Series], bool]) -> Callable[[], Awaitable[bool]]:
    async def poll() -> bool:
        return check(await run.scrape())

    return poll


def _msgs(m: Series, direction: str, msg_type: str) -> float:
    return (
        value(m, "tradeops_fix_session_messages_total", **S, direction=direction, msg_type=msg_type)
        or 0
    )


async def test_reads_a_live_session(fix_acceptor: FixAcceptor, exporter_factory: Factory) -> None:
    run: Running = await exporter_factory(_config(fix_acceptor))
    # phase 1: orders and filled executions, then idle heartbeats from the client
    started = time.time()
    trading = asyncio.create_task(
        sim_fix.run(fix_acceptor.address, orders=4, order_interval=0.1, seconds=3.5)
    )
    await eventually(_until(run, lambda m: value(m, "tradeops_fix_session_logged_on", **S) == 1))
    m = await run.scrape()
    assert value(m, "tradeops_fix_session_heartbeat_overdue", **S) == 0
    first_logon = value(m, "tradeops_fix_session_last_logon_timestamp_seconds", **S)
    assert first_logon is not None and started - 0.01 <= first_logon <= time.time()
    stats = await trading
    assert stats.fills == 4
    m = await scrape_until(run, lambda m: value(m, "tradeops_fix_session_logged_on", **S) == 0)
    assert _msgs(m, "inbound", "new_order_single") == 4
    assert _msgs(m, "outbound", "execution_report") == 4
    assert _msgs(m, "inbound", "logon") == 1 and _msgs(m, "outbound", "logon") == 1
    assert _msgs(m, "inbound", "logout") == 1
    assert _msgs(m, "inbound", "heartbeat") >= 2
    assert value(m, "tradeops_fix_session_heartbeat_interval_seconds", **S) == 1
    jitter = value(m, "tradeops_fix_session_heartbeat_jitter_seconds", **S)
    assert jitter is not None and 0 <= jitter < 0.5
    assert value(m, "tradeops_fix_session_logons_total", **S, result="success") == 1
    assert value(m, "tradeops_fix_session_disconnects_total", **S) == 1
    seqnums = (fix_acceptor.store_dir / f"{fix_acceptor.prefix('SIM')}.seqnums").read_text()
    sender, target = (int(x) for x in seqnums.split(":"))
    assert value(m, "tradeops_fix_session_next_sender_seqnum", **S) == sender
    assert value(m, "tradeops_fix_session_next_target_seqnum", **S) == target
    last_in = value(m, "tradeops_fix_session_last_inbound_timestamp_seconds", **S)
    last_out = value(m, "tradeops_fix_session_last_outbound_timestamp_seconds", **S)
    assert last_in is not None and last_out is not None and abs(last_in - last_out) < 1
    assert value(m, "tradeops_fix_session_store_integrity_ok", **S) == 1
    assert value(m, "tradeops_fix_session_in_schedule", **S) == 1
    info = {"begin_string": "FIX.4.4", "sender_comp_id": "VENUE", "target_comp_id": "SIM"}
    assert value(m, "tradeops_fix_session_info", **S, **info) == 1
    first_creation = value(m, "tradeops_fix_session_store_creation_timestamp_seconds", **S)
    assert first_creation is not None

    # phase 2: a client that stops heartbeating makes the engine send a TestRequest;
    # its answer gives the passive round trip. 141=Y on logon resets the store.
    await asyncio.sleep(1.1)  # the .session file has one-second resolution
    second_started = time.time()
    await sim_fix.run(fix_acceptor.address, orders=0, heartbeats=False, seconds=3)

    def second_session(m: Series) -> bool:
        return value(m, "tradeops_fix_session_logons_total", **S, result="success") == 2 and (
            value(m, "tradeops_fix_session_logged_on", **S) == 0
        )

    m = await scrape_until(run, second_session)
    second_logon = value(m, "tradeops_fix_session_last_logon_timestamp_seconds", **S)
    assert second_logon is not None and second_started - 0.01 <= second_logon <= second_started + 1
    assert value(m, "tradeops_fix_session_heartbeat_overdue", **S) == 0  # logged out: none owed
    assert _msgs(m, "outbound", "test_request") >= 1
    rtt = value(m, "tradeops_fix_session_test_request_roundtrip_seconds", **S)
    assert rtt is not None and 0 <= rtt < 0.5
    creation = value(m, "tradeops_fix_session_store_creation_timestamp_seconds", **S)
    assert creation is not None and creation > first_creation
    assert value(m, "tradeops_fix_session_store_integrity_ok", **S) == 1  # reset, not corruption
    assert value(m, "tradeops_fix_session_seqnum_regressions_total", **S) == 0
    read = value(m, "tradeops_fix_session_log_bytes_read_total", **S, log="messages")
    size = (fix_acceptor.log_dir / f"{fix_acceptor.prefix('SIM')}.messages.current.log").stat()
    assert read == size.st_size  # each byte read once, across many cycles
    assert value(m, "tradeops_up", kind="fix_store", target="sim") == 1


ACK = "tradeops_fix_session_order_ack_latency_seconds"


def _acks_in_log(log_text: str) -> list[float]:
    """Ack latencies computed straight from the engine's message log, independently
    of the reader: inbound D -> the first outbound 8 with the same ClOrdID (11).
    Also checks the line timestamps: nine digits, of which the last three are 0."""
    sent: dict[str, dt.datetime] = {}
    acks: list[float] = []
    for line in log_text.splitlines():
        stamp, _, raw = line.partition(" : ")
        assert len(stamp) == 27 and stamp[-3:] == "000", stamp  # microsecond resolution
        when = dt.datetime.strptime(stamp[:24], "%Y%m%d-%H:%M:%S.%f")
        fields = dict(f.split("=", 1) for f in raw.split("\x01") if f)
        if fields["35"] == "D" and fields["49"] == "SIM":
            sent[fields["11"]] = when
        elif fields["35"] == "8" and fields["49"] == "VENUE" and fields["11"] in sent:
            acks.append((when - sent.pop(fields["11"])).total_seconds())
    return acks


async def test_order_ack_latency_from_a_live_session(
    fix_acceptor: FixAcceptor, exporter_factory: Factory
) -> None:
    """The acceptor's log is the venue's side: D inbound, its 8 outbound."""
    run: Running = await exporter_factory(_config(fix_acceptor))
    stats = await sim_fix.run(fix_acceptor.address, orders=6, order_interval=0.05, seconds=1.0)
    assert stats.fills == 6
    m = await scrape_until(run, lambda m: value(m, f"{ACK}_count", **S) == stats.fills)
    total = value(m, f"{ACK}_sum", **S)
    assert total is not None and total > 0
    assert value(m, f"{ACK}_bucket", **S, le="0.25") == stats.fills  # all small
    assert value(m, "tradeops_fix_session_orders_unacknowledged_total", **S) == 0
    assert value(m, "tradeops_fix_session_orders_pending", **S) == 0
    log = fix_acceptor.log_dir / f"{fix_acceptor.prefix('SIM')}.messages.current.log"
    acks = _acks_in_log(log.read_text())
    assert len(acks) == stats.fills and all(0 < a < 0.25 for a in acks)
    assert total == pytest.approx(sum(acks), abs=1e-5)


def _answered_entries_in_log(log_text: str) -> dict[str, tuple[str, str]]:
    """Order entries (D, F, G) the simulator sent that the venue answered, straight
    from the engine's message log: ClOrdID -> (entry MsgType, first answer MsgType)."""
    sent: dict[str, str] = {}
    answered: dict[str, tuple[str, str]] = {}
    for line in log_text.splitlines():
        fields = dict(f.split("=", 1) for f in line.partition(" : ")[2].split("\x01") if f)
        if fields["35"] in ("D", "F", "G") and fields["49"] == "SIM":
            sent[fields["11"]] = fields["35"]
        elif fields["35"] in ("8", "9") and fields["49"] == "VENUE" and fields["11"] in sent:
            answered[fields["11"]] = (sent.pop(fields["11"]), fields["35"])
    assert not sent, f"unanswered: {sent}"
    return answered


async def test_cancel_and_replace_acks_from_a_live_session(
    fix_acceptor: FixAcceptor, exporter_factory: Factory
) -> None:
    """F and G are paired too: with the 8 for an open order, with the 9 otherwise."""
    run: Running = await exporter_factory(_config(fix_acceptor))
    stats = await sim_fix.run(
        fix_acceptor.address, orders=3, cancels=2, replaces=2, order_interval=0.05, seconds=1.5
    )
    assert (stats.orders_sent, stats.resting_sent) == (3, 4)
    assert (stats.cancels_sent, stats.replaces_sent) == (4, 4)  # half for unknown ClOrdIDs
    assert (stats.fills, stats.new_acks, stats.canceled, stats.replaced) == (3, 4, 2, 2)
    assert stats.cancel_rejects == 4 and stats.received.get("3", 0) == 0
    entries = 3 + 4 + 4 + 4
    m = await scrape_until(run, lambda m: value(m, f"{ACK}_count", **S) == entries)
    assert value(m, "tradeops_fix_session_orders_unacknowledged_total", **S) == 0
    assert value(m, "tradeops_fix_session_orders_pending", **S) == 0
    assert _msgs(m, "inbound", "order_cancel_request") == 4
    assert _msgs(m, "inbound", "order_cancel_replace_request") == 4
    assert _msgs(m, "outbound", "order_cancel_reject") == 4
    log = fix_acceptor.log_dir / f"{fix_acceptor.prefix('SIM')}.messages.current.log"
    answered = _answered_entries_in_log(log.read_text())
    assert len(answered) == entries
    pairs = Counter(answered.values())
    assert pairs == {("D", "8"): 7, ("F", "8"): 2, ("F", "9"): 2, ("G", "8"): 2, ("G", "9"): 2}
    assert answered["SIM-F1"] == ("F", "8") and answered["SIM-F1X"] == ("F", "9")


async def test_engine_that_never_logged_on_is_not_reported_healthy(
    fix_acceptor: FixAcceptor, exporter_factory: Factory
) -> None:
    """The engine is up with its store, inside the schedule, but no logon happened:
    its event log says only "Created session". Nothing may read as a healthy 0."""
    run: Running = await exporter_factory(_config(fix_acceptor))
    m = await scrape_until(
        run, lambda m: value(m, "tradeops_up", kind="fix_store", target="sim") == 1
    )
    assert value(m, "tradeops_fix_session_in_schedule", **S) == 1
    assert value(m, "tradeops_fix_session_next_sender_seqnum", **S) == 1
    assert value(m, "tradeops_fix_session_logged_on", **S) is None
    assert value(m, "tradeops_fix_session_heartbeat_overdue", **S) is None
    assert value(m, "tradeops_fix_session_last_logon_timestamp_seconds", **S) is None
    assert value(m, "tradeops_fix_session_logons_total", **S, result="success") == 0


async def test_engine_killed_mid_session_shows_heartbeat_overdue(
    fix_acceptor: FixAcceptor, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(_config(fix_acceptor))
    stop = asyncio.Event()
    trading = asyncio.create_task(sim_fix.run(fix_acceptor.address, orders=2, stop=stop))
    try:
        await eventually(
            _until(run, lambda m: value(m, "tradeops_fix_session_logged_on", **S) == 1)
        )
        fix_acceptor.kill()  # the engine dies: no "Disconnecting" in its event log
        # overdue 2 s (HeartBtInt 1 s + 1 s grace) after the last inbound message
        await eventually(
            _until(run, lambda m: value(m, "tradeops_fix_session_heartbeat_overdue", **S) == 1),
            timeout=15,
        )
        m = await run.scrape()
        assert value(m, "tradeops_fix_session_logged_on", **S) == 1  # what the log last said
        assert value(m, "tradeops_up", kind="fix_store", target="sim") == 1
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(trading, return_exceptions=True), 5)


async def test_missing_store_is_a_config_error(exporter_factory: Factory, tmp_path: Any) -> None:
    run: Running = await exporter_factory(f"""
fix_store:
  - {{name: sim, store_path: "{tmp_path}/nowhere", sender_comp_id: A, target_comp_id: B,
      interval: 1s, timeout: 500ms}}
""")

    async def failed() -> bool:
        m = await run.scrape()
        return (
            value(m, "tradeops_probe_errors_total", kind="fix_store", target="sim", reason="config")
            or 0
        ) >= 1

    await eventually(failed)
    m = await run.scrape()
    assert value(m, "tradeops_up", kind="fix_store", target="sim") == 0
    assert (
        value(
            m,
            "tradeops_fix_session_info",
            **S,
            begin_string="FIX.4.4",
            sender_comp_id="A",
            target_comp_id="B",
        )
        is None
    )


async def test_active_probe_logons_seen_by_the_passive_reader(
    fix_acceptor: FixAcceptor, exporter_factory: Factory, tmp_path: Any
) -> None:
    """The acceptor's own files record the monitoring sessions, good and rejected.

    The active probes and the passive reader run in two exporters: one config
    may not watch a session and log on with its CompIDs at the same time."""
    good, bad = tmp_path / "good.pw", tmp_path / "bad.pw"
    good.write_text(MONITOR_PASSWORD)
    bad.write_text("wrong")
    # Both log on as AUTHED, and the venue refuses a second connection for a session
    # already logged on: intervals that differ keep the two from overlapping on every
    # run (a slow machine stretches the good session). A generous timeout, so that load
    # does not cut the good session before its TestRequest.
    common = "sender_comp_id: AUTHED, target_comp_id: VENUE, timeout: 1200ms"
    await exporter_factory(f"""
fix:
  - {{name: good, address: "{fix_acceptor.address}", password_file: "{good}", {common},
      interval: 2s}}
  - {{name: bad, address: "{fix_acceptor.address}", password_file: "{bad}", {common},
      interval: 1300ms}}
""")
    run: Running = await exporter_factory(f"""
fix_store:
  - {{name: authed, store_path: "{fix_acceptor.store_dir}", log_path: "{fix_acceptor.log_dir}",
      sender_comp_id: VENUE, target_comp_id: AUTHED, interval: 500ms, timeout: 400ms}}
""")
    a = {"session": "authed"}

    def inbound_tr(m: Series) -> float:
        msgs = "tradeops_fix_session_messages_total"
        return value(m, msgs, **a, direction="inbound", msg_type="test_request") or 0

    def both_results(m: Series) -> bool:
        return (
            value(m, "tradeops_fix_session_logons_total", **a, result="success") or 0
        ) >= 1 and (value(m, "tradeops_fix_session_logons_total", **a, result="failure") or 0) >= 1

    # the logons show as soon as the reader gets to them; the good session's TestRequest
    # and both disconnects come later in the files, maybe only in a later cycle
    def all_seen(m: Series) -> bool:
        disconnects = value(m, "tradeops_fix_session_disconnects_total", **a) or 0
        return both_results(m) and inbound_tr(m) >= 1 and disconnects >= 2

    try:
        m = await scrape_until(run, all_seen, timeout=30)
    except AssertionError:
        m = await run.scrape()
        seen = {
            f"{name}{sorted(labels)}": v
            for (name, labels), v in m.items()
            if "logons" in name or "disconnects" in name
        }
        raise AssertionError(f"not all seen: {seen}, test requests in {inbound_tr(m)}") from None
    assert inbound_tr(m) >= 1  # the probe's TestRequest, seen from the venue's side
