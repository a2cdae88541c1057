"""Whether the server's bytes frame as PostgreSQL messages (protocol 3), as libpq checks.

asyncpg takes any byte for a message type and waits for as many bytes as the next
four announce: a peer that is not PostgreSQL (garbage, an HTTP server) would hold
every run until its deadline. :class:`FramingCheck` sits in front of asyncpg's
protocol and ends such a connection at the first header that cannot be PostgreSQL's.
"""

from __future__ import annotations

import asyncio
import struct
from typing import cast

from ...probe import ProbeError


class NotPostgres(ConnectionError):
    """The server's bytes do not frame as PostgreSQL messages; the connection was aborted."""


_BACKEND_TYPES = frozenset(b"123ACDEGHIKNRSTVWZcdnstv")
"""Every message type a PostgreSQL server sends (protocol 3)."""
_LONG_TYPES = frozenset(b"ADENTVd")
"""The types that may be longer than ``_MAX_SHORT`` (libpq's VALID_LONG_MESSAGE_TYPE)."""
_MAX_SHORT = 30000
_FIRST_LIMITS = {ord("R"): 2000, ord("v"): 2000, ord("E"): _MAX_SHORT}
"""What a server may open with (Authentication, NegotiateProtocolVersion,
ErrorResponse) and how long it may be: libpq's check of a first reply."""


def header_problem(header: bytes, first: bool) -> str | None:
    """What is wrong with a message header (its type and, once there, its length)."""
    mtype = header[0]
    allowed = _FIRST_LIMITS if first else _BACKEND_TYPES
    if mtype not in allowed:
        where = "first reply" if first else "message"
        return f"the server's {where} has type {header[:1]!r}: not PostgreSQL"
    if len(header) < 5:
        return None
    (length,) = struct.unpack("!I", header[1:])
    if first:
        shortest, limit = 8, _FIRST_LIMITS[mtype]
    else:
        shortest, limit = 4, (1 << 32) - 1 if mtype in _LONG_TYPES else _MAX_SHORT
    if not shortest <= length <= limit:
        return (
            f"the server's {chr(mtype)!r} message announces {length} bytes"
            f" (at most {limit}): not PostgreSQL"
        )
    return None


class FramingCheck(asyncio.Protocol):
    """Sits in front of asyncpg's protocol and checks how the server's bytes frame.

    As libpq does, the first reply must be an Authentication,
    NegotiateProtocolVersion or ErrorResponse of a plausible length, every message a
    known type, and only rows, errors, notices and the like longer than 30000 bytes.
    Huge rows are the response budget's business.
    """

    def __init__(self, inner: asyncio.Protocol) -> None:
        self.inner = inner
        self._header = b""
        self._body_left = 0
        self._first = True
        self._rejected = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        problem = self._scan(data)
        if problem is not None:
            self._reject(problem)
            return
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._rejected else self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._rejected:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _scan(self, data: bytes) -> str | None:
        i, n = 0, len(data)
        while i < n:
            if self._body_left:
                step = min(self._body_left, n - i)
                self._body_left -= step
                i += step
                continue
            take = 5 - len(self._header)
            self._header += data[i : i + take]
            i += take
            problem = header_problem(self._header, self._first)
            if problem is not None or len(self._header) < 5:
                return problem
            self._body_left = struct.unpack("!I", self._header[1:])[0] - 4
            self._header = b""
            self._first = False
        return None

    def _reject(self, problem: str) -> None:
        self._rejected = True
        if self._transport is not None:
            self._transport.abort()
        self.inner.connection_lost(NotPostgres(problem))


def not_postgres(exc: BaseException) -> ProbeError | None:
    """A ``protocol`` error naming what :class:`FramingCheck` found, when it ended the
    connection (asyncpg reports only that the connection closed)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, NotPostgres):
        cause = cause.__cause__
    return None if cause is None else ProbeError("protocol", str(cause))
