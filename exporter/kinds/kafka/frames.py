"""Kafka connections that keep a run's response budget and check each frame first.

aiokafka opens its connections itself (``AIOKafkaClient.bootstrap`` and
``_get_conn`` call ``aiokafka.conn.create_conn``) and reads every response frame
whole, whatever size the peer announces, then decodes it on the event loop.
``BoundedConnection`` is an aiokafka connection whose transport goes through
``exporter.budget.BoundedProtocol`` (every byte charged to the run's budget), and
whose reader checks each frame before reading it: the announced size against
``frame_limit`` (the handshake's answers against ``HANDSHAKE_FRAME``), the
correlation id against the request waiting for it. A frame that fails is never
read: the connection closes with ``FrameRejected``. Frames larger than
``DECODE_INLINE`` are decoded in a worker thread, so a large frame of tiny
elements does not hold the loop (and /metrics) while it is decoded.

aiokafka offers no hook for this: the overrides follow aiokafka 0.14's private
methods line for line where they are not the point, and
``tests/kinds/kafka/test_kafka_conn.py`` pins those methods' source.
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
from collections.abc import Callable
from typing import Any

import aiokafka.errors as kerr
from aiokafka.conn import AIOKafkaConnection

from ...budget import BoundedProtocol, ReadBudget, format_size

HANDSHAKE_FRAME = 64 << 10
"""The largest answer to ApiVersions, SaslHandshake, SaslAuthenticate and raw SASL
tokens (a real one is a few hundred bytes)."""
HANDSHAKE_APIS = frozenset({17, 18, 36})
DECODE_INLINE = 64 << 10
"""Frames up to this size are decoded on the event loop (at most ~55 ms for one of
tiny elements on a busy 2-core machine); larger ones in a worker thread."""
FRAME_SHARE = 32
"""A frame may be at most 1/FRAME_SHARE of the run's budget (and at least
``HANDSHAKE_FRAME``): it bounds what one answer costs to decode and hold in
memory (a frame of tiny elements decodes to ~15 times its size in objects)."""
_SIZE = struct.Struct(">i")


class FrameRejected(ConnectionError):
    """A response frame the connection does not read: larger than allowed, or not
    the answer to the request waiting for one."""


def frame_limit(budget: ReadBudget) -> int:
    """The largest response frame one connection reads under ``budget``."""
    return min(budget.limit, max(HANDSHAKE_FRAME, budget.limit // FRAME_SHARE))


class _BoundedLoop:
    """The running loop, except that ``create_connection`` wraps the protocol in a
    ``BoundedProtocol``: handed to ``AIOKafkaConnection.connect``, which creates its
    transport with ``self._loop.create_connection(lambda: protocol, ...)``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, budget: ReadBudget) -> None:
        self._loop = loop
        self._budget = budget

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def create_connection(
        self, factory: Callable[[], asyncio.BaseProtocol], *args: Any, **kwargs: Any
    ) -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol]:
        """The loop's, with the protocol wrapped."""
        budget = self._budget
        return await self._loop.create_connection(
            lambda: BoundedProtocol(factory(), budget), *args, **kwargs
        )


class BoundedConnection(AIOKafkaConnection):  # type: ignore[misc]
    """An aiokafka connection that charges ``budget`` and checks frames before reading."""

    _loop: Any

    def __init__(self, host: str, port: int, *, budget: ReadBudget, **settings: Any) -> None:
        super().__init__(host, port, **settings)
        self.budget = budget

    async def connect(self) -> Any:
        """aiokafka's connect, with the transport's protocol wrapped (see ``_BoundedLoop``)."""
        loop = self._loop
        self._loop = _BoundedLoop(loop, self.budget)
        try:
            return await super().connect()
        finally:
            self._loop = loop

    async def _do_sasl_handshake(self) -> None:
        """aiokafka's, with a broker's refusal inside the SASL exchange itself (a SCRAM
        server-final without a signature, an unexpected PLAIN answer) reported as an
        authentication failure: aiokafka lets it out as a KeyError, ValueError or
        AssertionError."""
        try:
            await super()._do_sasl_handshake()
        except (KeyError, ValueError, AssertionError, UnicodeDecodeError) as exc:
            self.close(exc=exc)
            raise kerr.SaslAuthenticationFailed(
                f"the broker did not complete the {self._sasl_mechanism} exchange"
            ) from exc

    def _check_frame(self, size: int) -> int | None:
        """Raise ``FrameRejected`` unless a request waits and ``size`` fits it; the
        correlation id the frame must carry (None for a raw SASL token)."""
        if not self._requests:
            raise FrameRejected("the broker sent a response frame no request waits for")
        correlation_id, request, _ = self._requests[0]
        if correlation_id is None or request.API_KEY in HANDSHAKE_APIS:
            limit, rule = HANDSHAKE_FRAME, "a handshake answer"
        else:
            limit = frame_limit(self.budget)
            rule = f"one response (1/{FRAME_SHARE} of response_budget)"
        if not (0 if correlation_id is None else 4) <= size <= limit:
            raise FrameRejected(
                f"the broker announced a {size}-byte response; {rule} may be at most"
                f" {format_size(limit)}"
            )
        return correlation_id  # type: ignore[no-any-return]

    @staticmethod
    async def _read(self_ref: Callable[[], BoundedConnection | None]) -> None:
        """aiokafka's frame reader, with each frame checked before it is read."""
        self = self_ref()
        if self is None:
            return
        reader = self._reader
        del self
        while True:
            (size,) = _SIZE.unpack(await reader.readexactly(4))
            self = self_ref()
            if self is None:
                return
            expected = self._check_frame(size)
            del self
            head = b""
            if expected is not None:
                head = await reader.readexactly(4)
                (got,) = _SIZE.unpack(head)
                if got != expected:
                    raise FrameRejected(
                        f"the broker answered correlation id {got}; the request waiting"
                        f" has {expected}"
                    )
            frame = head + await reader.readexactly(size - len(head))
            self = self_ref()
            if self is None:
                return
            if expected is not None and size > DECODE_INLINE:
                await self._decode_in_thread(frame)
            else:
                self._handle_frame(frame)
            del self

    async def _decode_in_thread(self, frame: bytes) -> None:
        """``_handle_frame`` for a large frame whose correlation id was checked: the
        decoding runs in a worker thread, the rest on the loop."""
        entry = self._requests[0]
        _, request, fut = entry
        response = await asyncio.to_thread(_decode, request, frame)
        if not fut.done():
            fut.set_result(response)
        self._last_action = time.monotonic()
        if self._requests and self._requests[0] is entry:
            self._requests.popleft()


def _decode(request: Any, frame: bytes) -> Any:
    buf = io.BytesIO(frame)
    request.parse_response_header(buf)
    return request.RESPONSE_TYPE.decode(buf)
