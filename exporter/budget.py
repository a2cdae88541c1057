"""What a peer may send: a per-run byte budget, and a transport wrapper that keeps it.

A target's peer decides how much it answers; a hostile or broken one announces a
2 GB reply and streams it. Every client connection a probe opens goes through
``BoundedProtocol``, which charges what arrives to the target's ``ReadBudget``
and aborts the connection once the run's budget is spent. It also hands the
client library at most ``CHUNK`` bytes per event-loop iteration, so a library
parsing a flood of tiny elements yields to the loop (and to ``/metrics``)
between chunks instead of holding it for the whole burst.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

CHUNK = 16 * 1024
"""Bytes handed to the client library per event-loop iteration."""
BACKLOG = 4 * CHUNK
"""Queued bytes at which the socket stops being read until the queue is handed over."""

_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def format_size(n: int) -> str:
    """``16777216`` -> ``16MiB`` (exact binary units where they fit)."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


class BudgetExceeded(ConnectionError):
    """The peer sent more than the run's budget; the connection was aborted."""


class ReadBudget:
    """Bytes one target's peers may send in one probe run (all its connections)."""

    __slots__ = ("exceeded", "limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.exceeded = False

    def reset(self) -> None:
        """Start a new run."""
        self.used = 0
        self.exceeded = False

    def charge(self, n: int) -> bool:
        """Count ``n`` received bytes; False once the budget is spent."""
        self.used += n
        if self.used > self.limit:
            self.exceeded = True
        return not self.exceeded

    def message(self) -> str:
        """The log line's text for a run that went over."""
        return (
            f"the peer sent more than the response budget of {format_size(self.limit)}"
            " in one run (response_budget); connection aborted"
        )


class BoundedProtocol(asyncio.Protocol):
    """Wraps a client library's protocol: charges the budget, hands data over in chunks.

    Works for plain and buffered (``get_buffer``) protocols; end-of-file and
    connection loss reach the wrapped protocol only after the data before them.
    """

    def __init__(self, inner: asyncio.BaseProtocol, budget: ReadBudget) -> None:
        self.inner = inner
        self.budget = budget
        self._transport: Any = None
        self._pending: deque[memoryview] = deque()
        self._scheduled = False
        self._eof = False
        self._lost: tuple[Exception | None] | None = None
        self._dead = False
        self._queued = 0
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._dead:
            return
        if not self.budget.charge(len(data)):
            self._abort()
            return
        self._pending.append(memoryview(data))
        self._queued += len(data)
        if not self._scheduled:
            self._drain()
        if self._queued > BACKLOG and not self._paused and self._transport is not None:
            self._paused = True  # the peer waits while the client library catches up
            self._transport.pause_reading()

    def eof_received(self) -> bool | None:
        self._eof = True
        if not self._pending:
            return self._deliver_eof()
        return True  # delivered after the pending data; the transport stays open till then

    def connection_lost(self, exc: Exception | None) -> None:
        if self._dead:
            return
        if self._pending:
            self._lost = (exc,)
            return
        self._dead = True
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _drain(self) -> None:
        self._scheduled = False
        if self._dead or not self._pending:
            return
        chunk = self._take(CHUNK)
        self._queued -= len(chunk)
        self._feed(chunk)
        if self._paused and self._queued <= BACKLOG // 2 and not self._dead:
            self._paused = False
            self._transport.resume_reading()
        if self._pending:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)
            return
        if self._eof and not self._deliver_eof() and self._transport is not None:
            self._transport.close()
        if self._lost is not None and not self._dead:
            self._dead = True
            self.inner.connection_lost(self._lost[0])

    def _take(self, n: int) -> memoryview:
        head = self._pending[0]
        if len(head) <= n:
            return self._pending.popleft()
        self._pending[0] = head[n:]
        return head[:n]

    def _feed(self, data: memoryview) -> None:
        inner: Any = self.inner
        if isinstance(inner, asyncio.BufferedProtocol):
            while data:
                buf = memoryview(inner.get_buffer(len(data)))
                n = min(len(buf), len(data))
                buf[:n] = data[:n]
                inner.buffer_updated(n)
                data = data[n:]
        else:
            inner.data_received(bytes(data))

    def _deliver_eof(self) -> bool | None:
        self._eof = False
        eof = getattr(self.inner, "eof_received", None)
        return eof() if eof is not None else None

    def _abort(self) -> None:
        self._dead = True
        self._pending.clear()
        if self._transport is not None:
            self._transport.abort()
        self.inner.connection_lost(BudgetExceeded(self.budget.message()))
