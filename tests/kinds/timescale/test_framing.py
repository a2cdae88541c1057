"""The framing check: how the server's bytes are followed across messages and
chunks, and which headers are not PostgreSQL's."""

from __future__ import annotations

import asyncio
import struct

import pytest

from exporter.kinds.timescale.framing import FramingCheck, NotPostgres, header_problem

from ...fixtures_timescale import HANDSHAKE, backend_message


class _Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.lost: list[Exception | None] = []

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)


class _Transport(asyncio.Transport):
    aborted = False

    def abort(self) -> None:
        self.aborted = True


@pytest.mark.parametrize("step", [1, 2, 3, 7, len(HANDSHAKE)])
def test_the_framing_check_follows_messages_across_chunks(step: int) -> None:
    """However the bytes are cut, what comes before a bad header passes untouched and
    the chunk that holds the bad type is stopped: the connection is aborted once."""
    inner, transport = _Recorder(), _Transport()
    check = FramingCheck(inner)
    check.connection_made(transport)
    stream = HANDSHAKE + backend_message(b"D", b"\x00" * 70000) + b"?bad"
    for i in range(0, len(stream), step):
        check.data_received(stream[i : i + step])
    bad = len(stream) - 4
    assert inner.data == stream[: bad // step * step]  # up to the chunk holding "?"
    assert transport.aborted
    assert len(inner.lost) == 1 and "type b'?'" in str(inner.lost[0])


@pytest.mark.parametrize(
    ("header", "first", "problem"),
    [
        (b"R", True, None),  # the length is not there yet
        (b"R" + struct.pack("!I", 8), True, None),
        (b"S", True, "the server's first reply has type b'S': not PostgreSQL"),
        (b"X", False, "the server's message has type b'X': not PostgreSQL"),
        (b"Z" + struct.pack("!I", 5), False, None),
        (b"R" + struct.pack("!I", 2001), True, "'R' message announces 2001 bytes (at most 2000)"),
        (b"R" + struct.pack("!I", 7), True, "'R' message announces 7 bytes (at most 2000)"),
        (b"S" + struct.pack("!I", 30001), False, "'S' message announces 30001 bytes"),
        (b"D" + struct.pack("!I", 1 << 31), False, None),  # rows: the budget's business
    ],
)
def test_header_problem(header: bytes, first: bool, problem: str | None) -> None:
    """libpq's checks: the first reply's type and length, then every message's type,
    and a length above 30000 bytes only for the types that may be long."""
    got = header_problem(header, first)
    assert got is None if problem is None else problem in (got or "")


def test_a_rejected_connection_hears_nothing_more() -> None:
    """asyncpg's protocol learns of the rejection once, and of nothing after it."""
    inner, transport = _Recorder(), _Transport()
    check = FramingCheck(inner)
    check.connection_made(transport)
    check.data_received(b"X")
    check.data_received(HANDSHAKE)
    check.connection_lost(None)
    assert inner.data == b"" and transport.aborted
    assert len(inner.lost) == 1 and isinstance(inner.lost[0], NotPostgres)
    assert check.eof_received() is None
