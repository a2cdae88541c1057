"""The TimescaleDB/PostgreSQL probe against hostile peers (tests/hostile.py): every
misbehaviour gives one reason on every run, one log line, a fast /metrics, and an
exporter whose memory, file descriptors, tasks and threads stay flat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from exporter.budget import format_size
from exporter.kinds.timescale import KIND
from exporter.kinds.timescale.config import TimescaleTarget
from exporter.kinds.timescale.probe import TimescaleState

from ... import faults
from ...fixtures_timescale import AUTH_OK, HANDSHAKE, backend_message
from ...helpers import Running, report, self_signed_cert
from ...hostile import Behaviour, HostilePeer, Usage, hostile_peer

Factory = Callable[..., Any]
SECRET = "hostile-s3cret-pw"


AUTH_FAILED = backend_message(
    b"E", b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "u"\0\0'
)
HUGE_NOTICE = AUTH_OK + b"N" + struct.pack("!I", 0x7FFFFFF0)
"""Authentication passes, then a NoticeResponse announces 2 GiB (filler follows)."""
HUGE_FIRST = b"R" + struct.pack("!I", 0x7FFFFFF0)
"""The very first reply announces 2 GiB."""


def _no_tls(_: bytes) -> bytes:
    """The answer to an SSLRequest from a server without TLS."""
    return b"N"


@dataclass(frozen=True)
class Case:
    """One hostile peer, the sslmode the target uses against it, the expected reason."""

    behaviour: Behaviour
    sslmode: str
    reason: str
    reply: bytes = b""
    """What the peer answers the StartupMessage with (``huge``, ``slow``, ``auth``)."""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.behaviour}-{self.sslmode}" + ("-first" if self.reply == HUGE_FIRST else "")

    def peer(self) -> contextlib.AbstractAsyncContextManager[HostilePeer]:
        # under sslmode prefer a scripted reply follows a "no TLS" answer to the SSLRequest;
        # the other behaviours answer the SSLRequest itself
        replies: list[Callable[[bytes], bytes]] = []
        if self.reply and self.sslmode == "prefer":
            replies.append(_no_tls)
        return hostile_peer(self.behaviour, reply=self.reply, replies=replies)


CASES = [
    Case("silent", "disable", "timeout"),
    Case("silent", "prefer", "timeout"),
    Case("close", "disable", "protocol"),
    Case("close", "prefer", "protocol"),
    Case("close", "require", "protocol"),
    Case("garbage", "disable", "protocol"),
    Case("garbage", "prefer", "protocol"),
    Case("garbage", "verify-full", "protocol"),  # with a CA file: the SSLRequest's answer
    Case("stream", "disable", "protocol"),
    Case("stream", "prefer", "protocol"),
    Case("slow", "disable", "timeout", AUTH_OK),  # a well-formed reply, a byte a second
    Case("slow", "prefer", "timeout", AUTH_OK),
    Case("huge", "disable", "protocol", HUGE_NOTICE),
    Case("huge", "prefer", "protocol", HUGE_NOTICE),
    Case("huge", "disable", "protocol", HUGE_FIRST),
    Case("auth", "disable", "auth", AUTH_FAILED),
    Case("auth", "prefer", "auth", AUTH_FAILED),
]


def _config(address: str, sslmode: str, tls: str = "", interval: str = "700ms") -> str:
    return f"""
timescale:
  - name: hostile
    address: "{address}"
    database: d
    user: u
    password: ${{TS_HOSTILE_PASSWORD}}
    sslmode: {sslmode}
{tls}    interval: {interval}
    timeout: 600ms
"""


def _target(address: str, sslmode: str = "disable", timeout: float = 0.5) -> TimescaleTarget:
    fields = {
        "name": "hostile",
        "address": address,
        "database": "d",
        "user": "u",
        "password": "${TS_HOSTILE_PASSWORD}",
        "sslmode": sslmode,
        "interval": max(1.0, 2 * timeout),
        "timeout": timeout,
    }
    return TimescaleTarget.model_validate(fields)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TS_HOSTILE_PASSWORD", SECRET)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_a_hostile_peer_is_one_stable_reason_and_one_log_line(
    case: Case, tmp_path: Path, exporter_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="exporter")
    tls = ""
    if case.sslmode == "verify-full":
        ca, _ = self_signed_cert(tmp_path)
        tls = f'    tls: {{ca_file: "{ca}"}}\n'
    async with case.peer() as peer:
        run: Running = await exporter_factory(_config(peer.address, case.sslmode, tls))
        failure = await faults.check_one_episode(
            run, caplog, "timescale", case.behaviour, case.reason, "tradeops_timescale_info", 4
        )
    if case.reply == HUGE_NOTICE:
        assert "response budget" in failure.fields["error"]
    faults.assert_not_logged(caplog.records, SECRET)


@pytest.mark.parametrize(
    ("sslmode", "reply"),
    [("disable", HUGE_NOTICE), ("prefer", HUGE_NOTICE), ("disable", HUGE_FIRST)],
    ids=["notice-disable", "notice-prefer", "first-reply"],
)
async def test_a_huge_message_is_cut_early_and_memory_stays_flat(
    sslmode: str, reply: bytes
) -> None:
    """A 2 GiB length, then filler without end: every run fails as ``protocol`` long
    before its deadline (a huge first reply is not PostgreSQL's; a huge message later
    on is cut at the response budget), and the resident set hardly grows."""
    replies: list[Callable[[bytes], bytes]] = [_no_tls] if sslmode == "prefer" else []
    async with hostile_peer("huge", reply=reply, replies=replies) as peer:
        target = _target(peer.address, sslmode, timeout=1.0)
        state = TimescaleState(target)
        before = Usage.now()
        sampler = faults.RssPeak()
        try:
            outcomes = await faults.repeat(KIND, target, state, 3)
        finally:
            growth = sampler.stop()
            await state.aclose()
        after = Usage.now()
    assert faults.same_reason(outcomes) == "protocol"
    expected = "response budget" if reply == HUGE_NOTICE else "not PostgreSQL"
    assert all(expected in str(o.error) for o in outcomes), [str(o.error) for o in outcomes]
    durations = sorted(o.duration for o in outcomes)
    assert durations[-1] < 0.7, durations
    max_rss = after.max_rss_bytes - before.max_rss_bytes
    report(
        f"timescale huge {sslmode} {'first reply' if reply == HUGE_FIRST else 'notice'}:"
        f" median run {durations[1] * 1000:.0f} ms, peak RSS growth {growth / faults.MIB:.1f} MB,"
        f" max RSS growth {max_rss / faults.MIB:.1f} MB, peer sent {peer.sent / faults.MIB:.1f} MB"
        f" (budget {format_size(KIND.response_budget)})"
    )
    assert growth < faults.PEAK_MARGIN and max_rss < faults.PEAK_MARGIN


@pytest.mark.parametrize(
    ("behaviour", "sslmode"),
    [("close", "disable"), ("close", "prefer"), ("garbage", "disable"), ("garbage", "prefer")],
)
async def test_a_thousand_failed_runs_leave_no_trace(behaviour: Behaviour, sslmode: str) -> None:
    """Fast failing runs, driven directly: one reason throughout, no connection left in
    the pool, and file descriptors, tasks, threads and memory on a plateau."""
    async with hostile_peer(behaviour) as peer:
        target = _target(peer.address, sslmode, timeout=2.0)  # only a stall would wait
        state = TimescaleState(target)
        try:
            # settle: the peer's handlers of the last connections finish
            flat = await faults.plateau(faults.runner(KIND, target, state), settle=0.1)
            pool = await state.pool()
            assert pool.get_size() == 0, "a failed run left a connection in the pool"
        finally:
            await state.aclose()
    report(f"timescale {behaviour} {sslmode}: {flat}")
    assert flat.reasons == {"protocol": 1100}, flat.errors
    flat.assert_flat()


class _TLSFlood:
    """A fake PostgreSQL server over TLS that lets anyone in and then announces a
    2 GiB notice and streams filler: hostile_peer speaks no TLS, and a real server
    cannot be made to do this. ``direct``: TLS from the first byte (no SSLRequest)."""

    def __init__(self, cert: Path, key: Path, direct: bool) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.direct = direct
        self.sent = 0
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if not self.direct:
                await reader.readexactly(8)  # SSLRequest
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self.ctx)
            await reader.read(65536)  # StartupMessage
            writer.write(HUGE_NOTICE)
            filler = b"1" * 65536
            while not writer.is_closing():
                writer.write(filler)
                await writer.drain()
                self.sent += len(filler)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[_TLSFlood]:
        server = await asyncio.start_server(
            self.handle, "127.0.0.1", 0, ssl=self.ctx if self.direct else None
        )
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await server.wait_closed()


@pytest.mark.parametrize("direct", [False, True], ids=["sslrequest", "direct"])
async def test_tls_connections_are_bounded_too(
    direct: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways asyncpg opens TLS: the SSLRequest upgrade (sslmode require) and direct
    TLS (``PGSSLNEGOTIATION=direct``). This pins the hook into asyncpg: if a new asyncpg
    opened these connections around it, the flood would run to the deadline."""
    if direct:
        monkeypatch.setenv("PGSSLNEGOTIATION", "direct")
    cert, key = self_signed_cert(tmp_path)
    async with _TLSFlood(cert, key, direct).serving() as peer:
        target = _target(f"127.0.0.1:{peer.port}", "require", timeout=1.0)
        outcomes, _ = await faults.fresh_runs(KIND, target, 2)
    assert faults.same_reason(outcomes) == "protocol"
    assert all("response budget" in str(o.error) for o in outcomes)
    assert max(o.duration for o in outcomes) < 0.7


def _handshake(_: bytes) -> bytes:
    return HANDSHAKE


@pytest.mark.parametrize(
    ("replies", "reply", "expected"),
    [
        ([], AUTH_OK + b"\x00" * 64, "has type b'\\x00'"),
        ([_handshake], b"\x00garbage", "has type b'\\x00'"),
        ([_handshake], backend_message(b"S", b"x" * 40000), "'S' message announces 40004 bytes"),
    ],
    ids=["after-authentication", "answering-a-query", "oversized-short-message"],
)
async def test_nonsense_after_a_good_start_is_protocol(
    replies: list[Callable[[bytes], bytes]], reply: bytes, expected: str
) -> None:
    """A peer that begins like PostgreSQL and then sends what is not a PostgreSQL
    message (asyncpg would wait for the length it announces): ``protocol`` at once,
    naming the message, on every run."""
    async with hostile_peer("auth", reply=reply, replies=replies) as peer:
        target = _target(peer.address)
        outcomes, _ = await faults.fresh_runs(KIND, target, 3)
    assert faults.same_reason(outcomes) == "protocol"
    assert all(expected in str(o.error) for o in outcomes), [str(o.error) for o in outcomes]
    assert max(o.duration for o in outcomes) < 0.3
