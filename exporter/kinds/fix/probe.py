"""FIX, active: a monitoring session that logs on to a venue or gateway.

Each run connects (TCP, optionally TLS), sends Logon (35=A), a TestRequest
(35=1) with a unique TestReqID (112), waits for the Heartbeat (35=0) that
echoes it, and logs out (35=5). It reports the connect, logon, test-request
and logout times, success, and one failure reason from a fixed set
(``catalogue.fix.FAILURE_REASONS``). A failed run keeps its failure series
(and whatever timings it measured) while the framework counts the error under
the mapped generic reason.

The session must use its own SenderCompID: logging on with a production CompID
would disconnect or reset the production session.

What the peer sends is charged to the run's response budget and read one
message at a time: a BodyLength (9) over ``MAX_MESSAGE_BYTES`` is garbled at
once, before its body is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import re
import ssl
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import simplefix
from pydantic import Field, model_validator

from ...budget import BoundedProtocol, BudgetExceeded
from ...model import HostPort, PasswordMixin, TargetBase, TLSConfig, parse_host_port
from ...probe import (
    KindRuntime,
    ProbeContext,
    ProbeError,
    ProbeKind,
    ProbeResult,
    ProbeState,
    Reason,
)
from . import metrics as M
from .common import BeginString, CompID, Schedule, in_schedule

FRAMEWORK_REASON: dict[str, Reason] = {
    "refused": "refused",
    "timeout": "timeout",
    "logon_rejected": "auth",
    "logout_received": "protocol",
    "garbled": "protocol",
    "bad_checksum": "protocol",
    "seqnum_too_low": "protocol",
    "out_of_schedule": "other",
    "other": "other",
}
"""FIX failure reason -> the framework's generic reason for ``probe_errors_total``."""

RESPONSE_BUDGET = 1 << 20
"""The kind's default ``response_budget``: a session's exchange is about 1 KiB."""
MAX_MESSAGE_BYTES = 64 * 1024
"""The longest message accepted from the peer (a monitoring session's are < 1 KiB)."""

_LOGOUT_WAIT_SECONDS = 1.0
_READ_BYTES = 65536
_EXPECTING_RE = re.compile(r"expecting (\d+)", re.IGNORECASE)


class FixTarget(TargetBase, PasswordMixin):
    """A venue or gateway to log on to with a dedicated monitoring session."""

    address: HostPort
    sender_comp_id: CompID
    """The monitoring session's own CompID; never a production one."""
    target_comp_id: CompID
    begin_string: BeginString = "FIX.4.4"
    heartbeat_interval: int = Field(default=30, ge=1, le=3600)
    reset_seq_num: bool = True
    """Send ResetSeqNumFlag (141=Y) so every run starts at MsgSeqNum 1."""
    username: str | None = Field(default=None, min_length=1, max_length=128)
    """Username (553); the password (554) comes from ``password``/``password_file``."""
    tls: TLSConfig | None = None
    schedule: Schedule | None = None

    @model_validator(mode="after")
    def _distinct_comp_ids(self) -> FixTarget:
        if self.sender_comp_id == self.target_comp_id:
            raise ValueError("sender_comp_id and target_comp_id must differ")
        return self


class FixState(ProbeState):
    """Failure counters and, without 141=Y, the sequence numbers across runs."""

    def __init__(self, target: FixTarget) -> None:
        self.failures: Counter[str] = Counter({r: 0 for r in M.FAILURE_REASONS})
        self.next_out_seq = 1
        self._ids = itertools.count(1)
        self.tls_context = target.tls.context() if target.tls is not None else None

    def test_req_id(self) -> str:
        """A TestReqID unique to this exporter process and run."""
        return f"tradeops-{time.time_ns()}-{next(self._ids)}"


class FixFailure(Exception):
    """A failure of the monitoring session with its FIX ``reason``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class _Closed(Exception):
    """The peer closed the connection: cleanly (FIN) or with a reset (RST).

    Which of the two a client sees after a peer hangs up is a race (a peer that
    closes with our message unread resets), so both are the same failure.
    """


@contextlib.contextmanager
def _peer_io() -> Iterator[None]:
    """Connection loss as ``_Closed``; a spent response budget as ``garbled``."""
    try:
        yield
    except BudgetExceeded as exc:
        raise FixFailure("garbled", str(exc)) from None
    except ConnectionError:
        raise _Closed from None


@dataclass
class _Timings:
    connect: float | None = None
    logon: float | None = None
    test_request: float | None = None
    logout: float | None = None
    peer_seqnum: int | None = None


class _Conn:
    """One FIX connection: framing and validation by simplefix, send with our header."""

    def __init__(
        self,
        target: FixTarget,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_seq: int,
    ) -> None:
        self.t = target
        self.reader = reader
        self.writer = writer
        self.parser = simplefix.FixParser()
        self.seq = first_seq

    async def send(self, msg_type: str, *fields: tuple[int, str | int]) -> None:
        msg = simplefix.FixMessage()
        msg.append_pair(8, self.t.begin_string, header=True)
        msg.append_pair(35, msg_type, header=True)
        msg.append_pair(49, self.t.sender_comp_id, header=True)
        msg.append_pair(56, self.t.target_comp_id, header=True)
        msg.append_pair(34, self.seq, header=True)
        msg.append_utc_timestamp(52, precision=3, header=True)
        for tag, value in fields:
            msg.append_pair(tag, value)
        self.seq += 1
        with _peer_io():
            self.writer.write(msg.encode())
            await self.writer.drain()

    async def recv(self) -> simplefix.FixMessage:
        while True:
            try:
                msg = self.parser.get_message()
            except simplefix.errors.ParsingError as exc:
                raise FixFailure(
                    "garbled", f"unparseable FIX from peer: {type(exc).__name__}"
                ) from None
            if msg is not None:
                _validate(msg, self.t.begin_string)
                return msg
            _check_partial(self.parser)
            with _peer_io():
                data = await self.reader.read(_READ_BYTES)
            if not data:
                raise _Closed
            self.parser.append_buffer(data)


def _check_partial(parser: simplefix.FixParser) -> None:
    """Fail early on the start of a message that cannot become a valid one."""
    pairs: list[tuple[int, bytes]] = parser.pairs
    buf: bytes = parser.get_buffer()
    if not pairs and buf[:2] not in (b"", b"8", b"8="):
        raise FixFailure("garbled", "peer sent bytes that do not start a FIX message")
    if len(pairs) >= 2:
        tag, length = pairs[1]
        if tag != 9:
            raise FixFailure("garbled", "the second field is not BodyLength (9)")
        if not length.isdigit() or len(length) > 9 or int(length) > MAX_MESSAGE_BYTES:
            raise FixFailure(
                "garbled", f"BodyLength (9) {length[:16].decode(errors='replace')} over 64 KiB"
            )
    if len(buf) + sum(len(value) + 8 for _, value in pairs) > MAX_MESSAGE_BYTES:
        raise FixFailure("garbled", "no complete FIX message in 64 KiB from peer")


def _validate(msg: simplefix.FixMessage, begin_string: str) -> None:
    """BodyLength and CheckSum as simplefix computes them must match the received ones."""
    try:
        cooked = msg.encode()
    except ValueError:
        raise FixFailure("garbled", "message without BeginString or MsgType") from None
    raw = msg.encode(raw=True)
    if raw != cooked:
        same_body = raw[: raw.rfind(b"\x0110=")] == cooked[: cooked.rfind(b"\x0110=")]
        if same_body:
            raise FixFailure("bad_checksum", "CheckSum (10) does not match the message")
        raise FixFailure("garbled", "BodyLength (9) or field order does not match the message")
    if msg.get(8) != begin_string.encode():
        raise FixFailure("garbled", "unexpected BeginString from peer")


def _text(msg: simplefix.FixMessage) -> str:
    raw = msg.get(58)
    return raw.decode(errors="replace") if isinstance(raw, bytes) else ""


def _msg_type(msg: simplefix.FixMessage) -> str:
    raw = msg.get(35)
    return raw.decode(errors="replace") if isinstance(raw, bytes) else ""


def _logout_failure(msg: simplefix.FixMessage, state: FixState, during_logon: bool) -> FixFailure:
    text = _text(msg)
    if "seqnum too low" in text.lower() or "msgseqnum too low" in text.lower():
        expecting = _EXPECTING_RE.search(text)
        if expecting:  # start where the acceptor expects on the next run
            state.next_out_seq = int(expecting.group(1))
        return FixFailure("seqnum_too_low", "acceptor: MsgSeqNum too low")
    if during_logon:
        return FixFailure("logon_rejected", "acceptor answered the Logon with a Logout")
    return FixFailure("logout_received", "acceptor logged out during the session")


async def _connect(
    target: FixTarget, state: FixState
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` with the transport charged to the run's budget."""
    host, port = parse_host_port(target.address)
    tls = state.tls_context
    server_name = ((target.tls and target.tls.server_name) or host) if tls else None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_MESSAGE_BYTES, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    try:
        transport, _ = await loop.create_connection(
            lambda: BoundedProtocol(protocol, state.budget),
            host,
            port,
            ssl=tls,
            server_hostname=server_name,
        )
    except ssl.SSLError as exc:
        raise FixFailure("other", f"TLS handshake failed: {exc.reason}") from None
    except OSError as exc:
        if isinstance(exc, ConnectionRefusedError) or exc.errno in (
            errno.ECONNREFUSED,
            errno.EHOSTUNREACH,
            errno.ENETUNREACH,
        ):
            raise FixFailure("refused", "connection refused") from None
        raise FixFailure("other", f"connect failed: {exc.strerror or type(exc).__name__}") from None
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def _logon(conn: _Conn, target: FixTarget, state: FixState, tm: _Timings) -> None:
    fields: list[tuple[int, str | int]] = [(98, 0), (108, target.heartbeat_interval)]
    if target.reset_seq_num:
        fields.append((141, "Y"))
    if target.username is not None:
        fields.append((553, target.username))
    password = target.password_value()
    if password is not None:
        fields.append((554, password))
    start = time.perf_counter()
    try:
        await conn.send("A", *fields)
        reply = await conn.recv()
    except _Closed:  # what an acceptor does on an unknown CompID (QuickFIX, the FIX spec)
        raise FixFailure("logon_rejected", "acceptor closed the connection after Logon") from None
    kind = _msg_type(reply)
    if kind == "5":
        raise _logout_failure(reply, state, during_logon=True)
    if kind != "A":
        raise FixFailure("logon_rejected", f"acceptor answered the Logon with 35={kind[:2]}")
    tm.logon = time.perf_counter() - start
    seq = reply.get(34)
    tm.peer_seqnum = int(seq) if isinstance(seq, bytes) and seq.isdigit() else None


async def _answer_admin(conn: _Conn, msg: simplefix.FixMessage, state: FixState) -> bool:
    """Handle what an acceptor may send between Logon and our Heartbeat.

    Returns True after a gap fill: it skipped whatever we had sent, so the
    TestRequest must go again.
    """
    kind = _msg_type(msg)
    if kind == "5":
        raise _logout_failure(msg, state, during_logon=False)
    if kind == "3":
        raise FixFailure("other", "acceptor sent a session-level Reject")
    if kind == "1":  # the acceptor's own TestRequest
        test_id = msg.get(112)
        await conn.send("0", *([(112, test_id.decode())] if isinstance(test_id, bytes) else []))
    elif kind == "2":  # we send no application messages: gap-fill all it asks for
        begin = msg.get(7)
        first = int(begin) if isinstance(begin, bytes) and begin.isdigit() else conn.seq
        next_seq = conn.seq
        conn.seq = first
        await conn.send("4", (43, "Y"), (123, "Y"), (36, next_seq))
        conn.seq = max(conn.seq, next_seq)
        return True
    return False


async def _test_request(conn: _Conn, state: FixState, tm: _Timings) -> None:
    test_id = state.test_req_id()
    start = time.perf_counter()
    try:
        await conn.send("1", (112, test_id))
        while True:
            msg = await conn.recv()
            if _msg_type(msg) == "0" and msg.get(112) == test_id.encode():
                tm.test_request = time.perf_counter() - start
                return
            if await _answer_admin(conn, msg, state):
                start = time.perf_counter()
                await conn.send("1", (112, test_id))
    except _Closed:
        raise FixFailure("other", "acceptor closed the connection without Logout") from None


async def _logout(conn: _Conn, tm: _Timings, deadline: float) -> None:
    """Log out; wait for the acceptor's Logout a little, never past ``deadline``."""
    start = time.perf_counter()
    loop = asyncio.get_running_loop()
    try:
        await conn.send("5")
        async with asyncio.timeout_at(min(loop.time() + _LOGOUT_WAIT_SECONDS, deadline)):
            while _msg_type(await conn.recv()) != "5":
                pass
        tm.logout = time.perf_counter() - start
    except (TimeoutError, _Closed, FixFailure):
        pass  # logged out either way: the acceptor may just close


async def _session(target: FixTarget, state: FixState, tm: _Timings, deadline: float) -> None:
    start = time.perf_counter()
    reader, writer = await _connect(target, state)
    tm.connect = time.perf_counter() - start
    conn = _Conn(target, reader, writer, 1 if target.reset_seq_num else state.next_out_seq)
    try:
        await _logon(conn, target, state, tm)
        await _test_request(conn, state, tm)
        await _logout(conn, tm, deadline)
    finally:
        if not target.reset_seq_num:
            state.next_out_seq = max(state.next_out_seq, conn.seq)
        writer.transport.abort()


def _series(
    r: ProbeResult, target: FixTarget, tm: _Timings, failure: str | None, sched: bool
) -> None:
    s = target.name
    r.add(M.PROBE_INFO, 1, s, target.begin_string, target.sender_comp_id, target.target_comp_id)
    r.add(M.PROBE_IN_SCHEDULE, sched, s)
    r.add(M.PROBE_SUCCESS, failure is None, s)
    r.add(M.PROBE_CONNECT, tm.connect, s)
    r.add(M.PROBE_LOGON, tm.logon, s)
    r.add(M.PROBE_TEST_REQUEST, tm.test_request, s)
    r.add(M.PROBE_LOGOUT, tm.logout, s)
    r.add(M.PROBE_PEER_SEQNUM, tm.peer_seqnum, s)
    for reason in M.FAILURE_REASONS:
        r.add(M.PROBE_FAILURE, reason == failure, s, reason)


async def probe(target: FixTarget, ctx: ProbeContext[FixState]) -> ProbeResult:
    """Run one monitoring session against the venue."""
    state = ctx.state
    r = ProbeResult()
    tm = _Timings()
    sched = in_schedule(target.schedule, ctx.now())
    failure: FixFailure | None = None
    if not sched:
        failure = FixFailure("out_of_schedule", "outside the session's trading schedule")
    else:
        loop = asyncio.get_running_loop()
        margin = min(0.2, (ctx.deadline - loop.time()) * 0.1)
        try:
            async with asyncio.timeout_at(ctx.deadline - margin):
                await _session(target, state, tm, ctx.deadline - 2 * margin)
        except TimeoutError:
            failure = FixFailure("timeout", "no answer from the acceptor before the deadline")
        except FixFailure as exc:
            failure = exc
        except (ConnectionError, OSError) as exc:
            failure = FixFailure("other", f"connection error: {type(exc).__name__}")
    if failure is not None:
        state.failures[failure.reason] += 1
    _series(r, target, tm, failure.reason if failure else None, sched)
    for reason, count in state.failures.items():
        r.add(M.PROBE_FAILURES, count, target.name, reason)
    if failure is not None and failure.reason != "out_of_schedule":
        raise ProbeError(FRAMEWORK_REASON[failure.reason], f"{failure.reason}: {failure}", r)
    return r


def production_compids_reused(targets: Mapping[str, Sequence[TargetBase]]) -> list[tuple[str, str]]:
    """A monitoring session must never log on with a production session's CompIDs:
    the venue would see a second logon and may drop the production session, and
    the two would share sequence numbers."""
    production: dict[frozenset[str], tuple[int, str]] = {}
    for i, store in enumerate(targets.get("fix_store", ())):
        pair = frozenset(
            (getattr(store, "sender_comp_id", ""), getattr(store, "target_comp_id", ""))
        )
        production.setdefault(pair, (i, store.name))
    problems = []
    for i, t in enumerate(targets.get("fix", ())):
        assert isinstance(t, FixTarget)
        hit = production.get(frozenset((t.sender_comp_id, t.target_comp_id)))
        if hit is not None:
            problems.append(
                (
                    f"fix[{i}].sender_comp_id",
                    f"reuses the CompIDs of production session fix_store[{hit[0]}] ({hit[1]}); "
                    "a monitoring session needs a CompID of its own",
                )
            )
    return problems


RUNTIME: KindRuntime[FixTarget, FixState] = KindRuntime(probe, FixState)

KIND: ProbeKind[FixTarget, FixState] = ProbeKind(
    name="fix",
    target_model=FixTarget,
    families=M.FAMILIES,
    load=lambda: RUNTIME,
    address_field="address",
    cross_check=production_compids_reused,
    example_address="127.0.0.1:9876",
    response_budget=RESPONSE_BUDGET,
)
