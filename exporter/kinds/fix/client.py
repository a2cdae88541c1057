"""The monitoring session's FIX connection and its exchange with the acceptor.

``connect`` opens TCP (optionally TLS) with every byte the peer sends charged
to the run's response budget; ``FixConnection`` frames and checks what arrives
one message at a time (a BodyLength (9) over ``MAX_MESSAGE_BYTES`` is garbled
at once, before its body is read) and sends with the session's header.
``logon``, ``request_heartbeat`` and ``logout`` are the three steps of a run;
each failure is a ``FixFailure`` with its FIX reason (``metrics.FAILURE_REASONS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass

import simplefix

from ...budget import BoundedProtocol, BudgetExceeded, ReadBudget
from ...model import parse_host_port
from .config import FixTarget

MAX_MESSAGE_BYTES = 64 * 1024
"""The longest message accepted from the peer (a monitoring session's are < 1 KiB)."""

_LOGOUT_WAIT_SECONDS = 1.0
_READ_BYTES = 65536
_EXPECTING_RE = re.compile(r"expecting (\d+)", re.IGNORECASE)


class FixFailure(Exception):
    """A failure of the monitoring session with its FIX ``reason``.

    ``expecting`` is the MsgSeqNum the acceptor asked for in a "MsgSeqNum too
    low" Logout: where the next run without 141=Y starts.
    """

    def __init__(self, reason: str, message: str, expecting: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.expecting = expecting


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
class Timings:
    """What one run measured; None for the steps it did not reach."""

    connect: float | None = None
    logon: float | None = None
    test_request: float | None = None
    logout: float | None = None
    peer_seqnum: int | None = None


class FixConnection:
    """One FIX connection: framing and validation by simplefix, send with our header."""

    def __init__(
        self,
        target: FixTarget,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        first_seq: int,
    ) -> None:
        self.target = target
        self.reader = reader
        self.writer = writer
        self.parser = simplefix.FixParser()
        self.seq = first_seq
        """The MsgSeqNum (34) of the next message sent."""

    async def send(self, msg_type: str, *fields: tuple[int, str | int]) -> None:
        """Send one message: our header, then ``fields`` in order."""
        t = self.target
        msg = simplefix.FixMessage()
        msg.append_pair(8, t.begin_string, header=True)
        msg.append_pair(35, msg_type, header=True)
        msg.append_pair(49, t.sender_comp_id, header=True)
        msg.append_pair(56, t.target_comp_id, header=True)
        msg.append_pair(34, self.seq, header=True)
        msg.append_utc_timestamp(52, precision=3, header=True)
        for tag, value in fields:
            msg.append_pair(tag, value)
        self.seq += 1
        with _peer_io():
            self.writer.write(msg.encode())
            await self.writer.drain()

    async def recv(self) -> simplefix.FixMessage:
        """The next complete, valid message from the peer."""
        while True:
            try:
                msg = self.parser.get_message()
            except simplefix.errors.ParsingError as exc:
                raise FixFailure(
                    "garbled", f"unparseable FIX from peer: {type(exc).__name__}"
                ) from None
            if msg is not None:
                validate(msg, self.target.begin_string)
                return msg
            check_partial(self.parser)
            with _peer_io():
                data = await self.reader.read(_READ_BYTES)
            if not data:
                raise _Closed
            self.parser.append_buffer(data)

    def abort(self) -> None:
        """Drop the connection at once (after a Logout, or on failure)."""
        self.writer.transport.abort()


def check_partial(parser: simplefix.FixParser) -> None:
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


def validate(msg: simplefix.FixMessage, begin_string: str) -> None:
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


async def connect(
    target: FixTarget, tls: ssl.SSLContext | None, budget: ReadBudget, first_seq: int
) -> FixConnection:
    """Open the connection (``tls`` when set), its transport charged to ``budget``."""
    host, port = parse_host_port(target.address)
    server_name = ((target.tls and target.tls.server_name) or host) if tls else None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_MESSAGE_BYTES, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    try:
        transport, _ = await loop.create_connection(
            lambda: BoundedProtocol(protocol, budget),
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
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return FixConnection(target, reader, writer, first_seq)


def _text(msg: simplefix.FixMessage) -> str:
    raw = msg.get(58)
    return raw.decode(errors="replace") if isinstance(raw, bytes) else ""


def _msg_type(msg: simplefix.FixMessage) -> str:
    raw = msg.get(35)
    return raw.decode(errors="replace") if isinstance(raw, bytes) else ""


def _logout_failure(msg: simplefix.FixMessage, during_logon: bool) -> FixFailure:
    text = _text(msg)
    if "seqnum too low" in text.lower() or "msgseqnum too low" in text.lower():
        expecting = _EXPECTING_RE.search(text)
        return FixFailure(
            "seqnum_too_low",
            "acceptor: MsgSeqNum too low",
            int(expecting.group(1)) if expecting else None,
        )
    if during_logon:
        return FixFailure("logon_rejected", "acceptor answered the Logon with a Logout")
    return FixFailure("logout_received", "acceptor logged out during the session")


async def logon(conn: FixConnection, tm: Timings) -> None:
    """Send Logon (35=A) and wait for the acceptor's; its MsgSeqNum goes to ``tm``."""
    target = conn.target
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
        raise _logout_failure(reply, during_logon=True)
    if kind != "A":
        raise FixFailure("logon_rejected", f"acceptor answered the Logon with 35={kind[:2]}")
    tm.logon = time.perf_counter() - start
    seq = reply.get(34)
    tm.peer_seqnum = int(seq) if isinstance(seq, bytes) and seq.isdigit() else None


async def _answer_admin(conn: FixConnection, msg: simplefix.FixMessage) -> bool:
    """Handle what an acceptor may send between Logon and our Heartbeat.

    Returns True after a gap fill: it skipped whatever we had sent, so the
    TestRequest must go again.
    """
    kind = _msg_type(msg)
    if kind == "5":
        raise _logout_failure(msg, during_logon=False)
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


async def request_heartbeat(conn: FixConnection, test_id: str, tm: Timings) -> None:
    """Send TestRequest (35=1) and wait for the Heartbeat (35=0) echoing ``test_id``."""
    start = time.perf_counter()
    try:
        await conn.send("1", (112, test_id))
        while True:
            msg = await conn.recv()
            if _msg_type(msg) == "0" and msg.get(112) == test_id.encode():
                tm.test_request = time.perf_counter() - start
                return
            if await _answer_admin(conn, msg):
                start = time.perf_counter()
                await conn.send("1", (112, test_id))
    except _Closed:
        raise FixFailure("other", "acceptor closed the connection without Logout") from None


async def logout(conn: FixConnection, tm: Timings, deadline: float) -> None:
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
