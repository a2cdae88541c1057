"""Active FIX probe against a real QuickFIX acceptor (and two tiny fake peers)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import simplefix

from exporter.kinds.fix import KIND, FixTarget
from exporter.kinds.fix.probe import FixState
from exporter.scheduler import run_probe
from stack.fix import FixAcceptor

from ...fixtures_fix import MONITOR_PASSWORD, fix_acceptor
from ...helpers import Running, Series, eventually, self_signed_cert, value

__all__ = ["fix_acceptor"]

Factory = Callable[..., Any]
S = {"session": "venue"}


def _config(address: str, extra: str = "", timeout: str = "1500ms") -> str:
    return f"""
fix:
  - name: venue
    address: "{address}"
    sender_comp_id: MONITOR
    target_comp_id: VENUE
    heartbeat_interval: 30
    interval: 2s
    timeout: {timeout}
{extra}
"""


def _with(extra: str, **fields: str) -> str:
    return extra + "".join(f"    {k}: {v}\n" for k, v in fields.items())


def _failure(m: Series) -> str | None:
    hot = [
        dict(lbl)["reason"]
        for (name, lbl), v in m.items()
        if name == "tradeops_fix_probe_failure" and v == 1
    ]
    assert len(hot) <= 1, hot
    return hot[0] if hot else None


def _until(run: Running, check: Callable[[Series], bool]) -> Callable[[], Awaitable[bool]]:
    async def poll() -> bool:
        return check(await run.scrape())

    return poll


def _errors(m: Series, reason: str) -> float:
    return value(m, "tradeops_probe_errors_total", kind="fix", target="venue", reason=reason) or 0


async def test_happy_path_reports_all_timings(
    fix_acceptor: FixAcceptor, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(_config(fix_acceptor.address))
    await eventually(_until(run, lambda m: value(m, "tradeops_fix_probe_success", **S) == 1))
    m = await run.scrape()
    for name in (
        "tradeops_fix_probe_connect_seconds",
        "tradeops_fix_probe_logon_seconds",
        "tradeops_fix_probe_test_request_roundtrip_seconds",
        "tradeops_fix_probe_logout_seconds",
    ):
        v = value(m, name, **S)
        assert v is not None and 0 < v < 1.5, (name, v)
    assert _failure(m) is None
    assert value(m, "tradeops_fix_probe_failure", **S, reason="timeout") == 0
    assert value(m, "tradeops_fix_probe_in_schedule", **S) == 1
    assert value(m, "tradeops_fix_probe_peer_logon_seqnum", **S) == 1  # 141=Y resets both sides
    info = {"begin_string": "FIX.4.4", "sender_comp_id": "MONITOR", "target_comp_id": "VENUE"}
    assert value(m, "tradeops_fix_probe_info", **S, **info) == 1
    assert value(m, "tradeops_up", kind="fix", target="venue") == 1
    assert all(_errors(m, r) == 0 for r in ("timeout", "refused", "auth", "protocol", "other"))
    # the acceptor's own log shows the whole session: logon, test request, logout
    log = (
        fix_acceptor.log_dir / f"{fix_acceptor.prefix('MONITOR')}.messages.current.log"
    ).read_text()
    assert "\x0135=1\x01" in log and "\x0135=0\x01" in log and "\x0135=5\x01" in log


async def test_password_from_file_is_sent_and_checked(
    fix_acceptor: FixAcceptor,
    exporter_factory: Factory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good, bad = tmp_path / "good.pw", tmp_path / "bad.pw"
    good.write_text(MONITOR_PASSWORD + "\n")
    bad.write_text("not-the-password\n")
    cfg = f"""
fix:
  - {{name: good, address: "{fix_acceptor.address}", sender_comp_id: AUTHED,
      target_comp_id: VENUE, username: monitor, password_file: "{good}", interval: 2s,
      timeout: 1500ms}}
  - {{name: bad, address: "{fix_acceptor.address}", sender_comp_id: AUTHED,
      target_comp_id: VENUE, password_file: "{bad}", interval: 2s, timeout: 1500ms}}
"""
    run: Running = await exporter_factory(cfg)

    def both_ran(m: Series) -> bool:
        return (
            value(m, "tradeops_fix_probe_success", session="good") == 1
            and value(m, "tradeops_fix_probe_failure", session="bad", reason="logon_rejected") == 1
        )

    await eventually(_until(run, both_ran), timeout=15)
    m = await run.scrape()
    assert value(m, "tradeops_probe_errors_total", kind="fix", target="bad", reason="auth")
    assert value(m, "tradeops_fix_probe_logon_seconds", session="bad") is None
    failed = [r for r in caplog.records if r.getMessage() == "probe failed"]
    fields = [r.fields for r in failed if r.fields["target"] == "bad"]  # type: ignore[attr-defined]
    assert fields and fields[0]["reason"] == "auth"
    assert fields[0]["error"].startswith("ProbeError: logon_rejected")
    assert MONITOR_PASSWORD not in caplog.text and "not-the-password" not in caplog.text


async def test_unknown_comp_id_is_logon_rejected(
    fix_acceptor: FixAcceptor, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(
        _config(fix_acceptor.address).replace("MONITOR", "STRANGER")
    )
    await eventually(_until(run, lambda m: _failure(m) == "logon_rejected"))
    m = await run.scrape()
    assert value(m, "tradeops_fix_probe_success", **S) == 0
    assert value(m, "tradeops_fix_probe_connect_seconds", **S) is not None
    assert value(m, "tradeops_fix_probe_logon_seconds", **S) is None
    assert value(m, "tradeops_fix_probe_failures_total", **S, reason="logon_rejected") >= 1  # type: ignore[operator]
    assert value(m, "tradeops_up", kind="fix", target="venue") == 0
    assert _errors(m, "auth") >= 1


async def test_seqnum_too_low_without_reset_then_recovers(
    fix_acceptor: FixAcceptor, exporter_factory: Factory
) -> None:
    first: Running = await exporter_factory(_config(fix_acceptor.address))
    await eventually(_until(first, lambda m: value(m, "tradeops_fix_probe_success", **S) == 1))
    await first.stop()  # the acceptor now expects MONITOR's MsgSeqNum 5 or more
    run: Running = await exporter_factory(
        _config(fix_acceptor.address, _with("", reset_seq_num="false"))
    )

    def saw_too_low(m: Series) -> bool:
        return (
            value(m, "tradeops_fix_probe_failures_total", **S, reason="seqnum_too_low") or 0
        ) >= 1

    await eventually(_until(run, saw_too_low))
    m = await run.scrape()
    assert _errors(m, "protocol") >= 1
    # the Logout said which number the acceptor expects: the next run starts there
    await eventually(_until(run, lambda m: value(m, "tradeops_fix_probe_success", **S) == 1))
    m = await run.scrape()
    assert (value(m, "tradeops_fix_probe_peer_logon_seqnum", **S) or 0) > 1


async def test_paused_acceptor_times_out_and_metrics_stay_fast(
    fix_acceptor: FixAcceptor, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(_config(fix_acceptor.address, timeout="800ms"))
    await eventually(_until(run, lambda m: value(m, "tradeops_fix_probe_success", **S) == 1))
    fix_acceptor.pause()
    try:
        # up to an interval (2 s) to the next run, then its 800 ms deadline
        await eventually(_until(run, lambda m: _failure(m) == "timeout"), timeout=15)
        m = await run.scrape()
        assert _errors(m, "timeout") >= 1
        assert value(m, "tradeops_fix_probe_connect_seconds", **S) is not None  # kernel accepts
        assert value(m, "tradeops_fix_probe_logon_seconds", **S) is None
        duration = value(m, "tradeops_probe_duration_seconds", kind="fix", target="venue")
        assert duration is not None and 0.5 < duration < 1.2
        worst = 0.0
        for _ in range(20):
            start = time.perf_counter()
            await run.scrape()
            worst = max(worst, time.perf_counter() - start)
        assert worst < 0.5, f"/metrics took {worst:.3f}s while the acceptor hangs"
    finally:
        fix_acceptor.resume()
    await eventually(_until(run, lambda m: value(m, "tradeops_fix_probe_success", **S) == 1))


async def test_killed_acceptor_is_refused(
    fix_acceptor: FixAcceptor, exporter_factory: Factory
) -> None:
    run: Running = await exporter_factory(_config(fix_acceptor.address))
    await eventually(_until(run, lambda m: value(m, "tradeops_fix_probe_success", **S) == 1))
    fix_acceptor.kill()
    # a run cut short by the kill may fail otherwise; the next one (2 s on) is refused
    await eventually(_until(run, lambda m: _failure(m) == "refused"), timeout=15)
    m = await run.scrape()
    assert _errors(m, "refused") >= 1
    assert value(m, "tradeops_fix_probe_connect_seconds", **S) is None
    assert value(m, "tradeops_up", kind="fix", target="venue") == 0


async def _fake_peer(reply: Callable[[bytes], bytes]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(reply(await reader.read(4096)))
            await writer.drain()
            await asyncio.wait_for(reader.read(), 2)  # until the probe hangs up
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _logon_reply(bad_checksum: bool = False) -> bytes:
    msg = simplefix.FixMessage()
    for tag, val in ((8, "FIX.4.4"), (35, "A"), (49, "VENUE"), (56, "MONITOR"), (34, 1)):
        msg.append_pair(tag, val)
    msg.append_utc_timestamp(52)
    msg.append_pair(98, 0)
    msg.append_pair(108, 30)
    wire: bytes = msg.encode()
    if bad_checksum:
        cut = wire.rfind(b"10=")
        wrong = (int(wire[cut + 3 : cut + 6]) + 1) % 256
        wire = wire[:cut] + b"10=%03d\x01" % wrong
    return wire


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (lambda _: b"HTTP/1.1 400 Bad Request\r\n\r\n", "garbled"),
        (lambda _: b"8=FIX.4.4\x019=5\x01abc=1\x01", "garbled"),
        (lambda _: _logon_reply(bad_checksum=True), "bad_checksum"),
    ],
    ids=["http", "non-numeric-tag", "bad-checksum"],
)
async def test_garbage_peer_is_reported_without_crash(
    reply: Callable[[bytes], bytes], reason: str, exporter_factory: Factory
) -> None:
    """A fake peer: a real QuickFIX acceptor cannot be made to send these bytes."""
    server = await _fake_peer(reply)
    port = server.sockets[0].getsockname()[1]
    async with server:
        run: Running = await exporter_factory(_config(f"127.0.0.1:{port}"))
        await eventually(_until(run, lambda m: _failure(m) == reason), timeout=5)
        m = await run.scrape()
        assert _errors(m, "protocol") >= 1
        assert value(m, "tradeops_exporter_loop_restarts_total", kind="fix", target="venue") == 0


async def test_out_of_schedule_does_not_connect(exporter_factory: Factory) -> None:
    """Nothing listens on the address: outside the schedule the probe must not try."""
    now = time.gmtime()
    closed_day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(now.tm_wday + 3) % 7]
    extra = (
        f'    schedule: {{timezone: UTC, start: "00:00", end: "00:00", weekdays: [{closed_day}]}}\n'
    )
    run: Running = await exporter_factory(_config("127.0.0.1:1", extra))
    await eventually(_until(run, lambda m: _failure(m) == "out_of_schedule"))
    m = await run.scrape()
    assert value(m, "tradeops_fix_probe_in_schedule", **S) == 0
    assert value(m, "tradeops_up", kind="fix", target="venue") == 1
    assert _errors(m, "refused") == 0


async def test_seqnum_too_high_is_answered_with_a_gap_fill(fix_acceptor: FixAcceptor) -> None:
    target = FixTarget.model_validate(
        {
            "name": "venue",
            "address": fix_acceptor.address,
            "sender_comp_id": "MONITOR",
            "target_comp_id": "VENUE",
            "reset_seq_num": False,
            "interval": 5,
            "timeout": 3,
        }
    )
    state = FixState(target)
    state.next_out_seq = 40  # the acceptor expects 1: it asks us to resend 1..39
    outcome = await run_probe(KIND, target, state, 3)
    assert outcome.ok, outcome.error
    log = (
        fix_acceptor.log_dir / f"{fix_acceptor.prefix('MONITOR')}.messages.current.log"
    ).read_text()
    assert "\x0135=2\x01" in log  # the ResendRequest
    assert "\x0135=4\x01" in log and "\x01123=Y\x01" in log  # our SequenceReset-GapFill
    assert state.next_out_seq > 40


async def test_tls_session_through_a_terminator(
    fix_acceptor: FixAcceptor, exporter_factory: Factory, tmp_path: Path
) -> None:
    """A TLS terminator in front of the real acceptor, as stunnel is deployed in front of
    QuickFIX (the Python acceptor has no TLS of its own): it only forwards bytes."""
    cert, key = self_signed_cert(tmp_path, "venue", "DNS:venue.test")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()

    async def terminate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", fix_acceptor.port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(terminate, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    async with server:
        cfg = f"""
fix:
  - {{name: venue, address: "127.0.0.1:{port}", sender_comp_id: MONITOR, target_comp_id: VENUE,
      tls: {{ca_file: "{cert}", server_name: venue.test}}, interval: 2s, timeout: 1500ms}}
  - {{name: untrusted, address: "127.0.0.1:{port}", sender_comp_id: SIM,
      target_comp_id: VENUE, tls: {{server_name: venue.test}}, interval: 2s, timeout: 1500ms}}
"""
        run: Running = await exporter_factory(cfg)

        def both(m: Series) -> bool:
            return (
                value(m, "tradeops_fix_probe_success", **S) == 1
                and value(m, "tradeops_fix_probe_failure", session="untrusted", reason="other") == 1
            )

        await eventually(_until(run, both), timeout=8)
        m = await run.scrape()
        assert value(m, "tradeops_fix_probe_test_request_roundtrip_seconds", **S) is not None
        assert value(m, "tradeops_fix_probe_connect_seconds", session="untrusted") is None
