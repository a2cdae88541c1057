"""The FIX connection (``client``): framing checks on partial and complete messages,
and what a Logout in answer to the Logon says (fake peers: a real acceptor sends
neither bad frames nor an arbitrary Logout text on demand)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import simplefix

from exporter.budget import ReadBudget
from exporter.kinds.fix.client import (
    MAX_MESSAGE_BYTES,
    FixFailure,
    Timings,
    check_partial,
    connect,
    logon,
    validate,
)
from exporter.kinds.fix.config import FixTarget

TARGET = FixTarget.model_validate(
    {
        "name": "venue",
        "address": "127.0.0.1:1",
        "sender_comp_id": "MONITOR",
        "target_comp_id": "VENUE",
    }
)


def _wire(msg_type: str, *fields: tuple[int, str | int], begin: str = "FIX.4.4") -> bytes:
    msg = simplefix.FixMessage()
    for tag, val in ((8, begin), (35, msg_type), (49, "VENUE"), (56, "MONITOR"), (34, 1)):
        msg.append_pair(tag, val, header=True)
    for tag, val in fields:
        msg.append_pair(tag, val)
    wire: bytes = msg.encode()
    return wire


def _parsed(data: bytes) -> simplefix.FixMessage:
    parser = simplefix.FixParser()
    parser.append_buffer(data)
    msg = parser.get_message()
    assert msg is not None
    return msg


def _reason(data: bytes) -> str | None:
    """The failure ``check_partial`` raises on ``data`` fed to a parser, or None."""
    parser = simplefix.FixParser()
    parser.append_buffer(data)
    assert parser.get_message() is None
    try:
        check_partial(parser)
    except FixFailure as exc:
        return exc.reason
    return None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", None),
        (b"8", None),
        (b"8=FIX.4.4\x019=70\x0135=A\x01", None),
        (b"HTTP/1.1 400 Bad Request\r\n", "garbled"),
        (b"8=FIX.4.4\x0135=A\x0149=VENUE\x01", "garbled"),  # 9 not second
        (b"8=FIX.4.4\x019=%d\x01" % (MAX_MESSAGE_BYTES + 1), "garbled"),
        (b"8=FIX.4.4\x019=2000000000\x01", "garbled"),
        (b"8=FIX.4.4\x019=x\x01", "garbled"),
    ],
    ids=["empty", "one-byte", "a-start", "http", "no-body-length", "over-64k", "2gb", "nan"],
)
def test_a_partial_message_that_cannot_become_valid_fails_at_once(
    data: bytes, reason: str | None
) -> None:
    assert _reason(data) == reason


def test_a_message_that_never_ends_within_64_kib_is_garbled() -> None:
    filler = b"58=" + b"x" * MAX_MESSAGE_BYTES + b"\x01"
    assert _reason(b"8=FIX.4.4\x019=65000\x0135=0\x01" + filler + b"58=y") == "garbled"


def test_validate_accepts_a_good_message_and_names_what_is_wrong() -> None:
    good = _wire("0", (112, "id-1"))
    validate(_parsed(good), "FIX.4.4")
    cut = good.rfind(b"10=")
    wrong_sum = good[:cut] + b"10=%03d\x01" % ((int(good[cut + 3 : cut + 6]) + 1) % 256)
    wrong_length = good.replace(b"\x019=", b"\x019=1", 1)
    cases = [(wrong_sum, "bad_checksum"), (wrong_length, "garbled")]
    cases.append((_wire("0", begin="FIX.4.2"), "garbled"))
    for data, reason in cases:
        with pytest.raises(FixFailure) as err:
            validate(_parsed(data), "FIX.4.4")
        assert err.value.reason == reason, err.value


@asynccontextmanager
async def _answering(reply: bytes) -> AsyncIterator[FixTarget]:
    """A peer that answers the first message with ``reply``; the target pointing at it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(reply)
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield TARGET.model_copy(update={"address": f"127.0.0.1:{port}"})


@pytest.mark.parametrize(
    ("text", "reason", "expecting"),
    [
        ("MsgSeqNum too low, expecting 42 but received 1", "seqnum_too_low", 42),
        ("MsgSeqNum too low", "seqnum_too_low", None),
        ("Rejected Logon Attempt: invalid credentials", "logon_rejected", None),
    ],
)
async def test_a_logout_answering_the_logon(text: str, reason: str, expecting: int | None) -> None:
    async with _answering(_wire("5", (58, text))) as target:
        conn = await connect(target, None, ReadBudget(1 << 20), 1)
        tm = Timings()
        try:
            with pytest.raises(FixFailure) as err:
                await logon(conn, tm)
        finally:
            conn.abort()
    assert (err.value.reason, err.value.expecting) == (reason, expecting)
    assert tm.logon is None and conn.seq == 2


async def test_a_refused_connection_is_refused() -> None:
    with pytest.raises(FixFailure) as err:
        await connect(TARGET, None, ReadBudget(1 << 20), 1)  # nothing listens on port 1
    assert err.value.reason == "refused"
