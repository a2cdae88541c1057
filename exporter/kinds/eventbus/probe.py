"""Event bus: the runtime's health endpoint (HTTP JSON, mapped to metrics) and an
end-to-end canary published on the bus transport (Kafka topic or Redis stream)
and read back, concurrently.

A run fails (``up`` 0) when either part fails; the log line says which part
and why. Canary counters and the round-trip histogram live in the target's
state, so a failed run loses nothing: they show the losses on the next success.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from ...logs import log
from ...probe import KindRuntime, ProbeContext, ProbeError, ProbeResult, ProbeState
from ...redact import error_text
from . import metrics as M
from .canary import canary
from .client import classify, new_session
from .config import EventBusTarget
from .health import health
from .tracker import CanaryTracker, new_instance_id
from .transport import Transport, make_transport

CLOSE_TIMEOUT = 2.0


class EventBusState(ProbeState):
    """The HTTP session, the canary transport and the canary's counters."""

    def __init__(self, target: EventBusTarget) -> None:
        self.ssl = target.tls.context() if target.tls is not None else None
        if target.canary is not None:  # unreadable TLS files: a config error now, not later
            for transport in (target.canary.kafka, target.canary.redis):
                if transport is not None and transport.tls is not None:
                    transport.tls.context()
        self.fields = target.fields
        self.session: aiohttp.ClientSession | None = None
        self.tracker = CanaryTracker(M.CANARY_ROUNDTRIP.buckets)
        self.instance = new_instance_id()
        self.transport: Transport | None = None
        self.transport_started = False
        self.reported_status: str | None = None
        self.closing: set[asyncio.Task[None]] = set()

    def http(self) -> aiohttp.ClientSession:
        """The session (created on first use, inside the event loop)."""
        if self.session is None or self.session.closed:
            self.session = new_session(lambda: self.budget, self.ssl)
        return self.session

    async def canary_transport(self, target: EventBusTarget) -> Transport:
        """The started transport; a half-started one is discarded and rebuilt."""
        assert target.canary is not None
        if self.transport is not None and not self.transport_started:
            await self.drop_transport()
        if self.transport is None:
            self.transport = make_transport(
                target.canary, target.name, target.timeout_s, self.budget
            )
            await self.transport.start()
            self.transport_started = True
        return self.transport

    async def drop_transport(self) -> None:
        """Forget the transport; it is closed in the background (bounded), so a broker
        that is down cannot eat the run's deadline. The next run reconnects."""
        transport, self.transport, self.transport_started = self.transport, None, False
        if transport is not None:
            task = asyncio.create_task(_close(transport), name="eventbus-canary-close")
            self.closing.add(task)
            task.add_done_callback(self.closing.discard)

    async def aclose(self) -> None:
        await self.drop_transport()
        if self.closing:
            await asyncio.gather(*self.closing, return_exceptions=True)
        if self.session is not None:
            await self.session.close()


async def _close(transport: Transport) -> None:
    try:
        await asyncio.wait_for(transport.aclose(), CLOSE_TIMEOUT)
    except Exception as exc:
        log(logging.DEBUG, "closing canary transport failed", error=error_text(exc))


def part_deadline(deadline: float, timeout: float) -> float:
    """Stop a part slightly before the run's deadline so it can report its own reason."""
    return deadline - min(0.1, timeout * 0.1)


async def probe(target: EventBusTarget, ctx: ProbeContext[EventBusState]) -> ProbeResult:
    """Probe one runtime: health endpoint and, when configured, the canary, concurrently.

    A failed part fails the run (up 0, its reason counted) but does not hide the
    other: a healthy endpoint's series and the canary's counters (losses included)
    are kept as the run's partial result.
    """
    r, health_r = ProbeResult(), ProbeResult()
    until = part_deadline(ctx.deadline, target.timeout_s)
    parts = [health(health_r, target, ctx.state, until, ctx.now)]
    if target.canary is not None:
        parts.append(canary(r, target, ctx.state, until, ctx.now))
    outcomes = await asyncio.gather(*parts, return_exceptions=True)
    if not isinstance(outcomes[0], BaseException):  # half-mapped documents are dropped
        r.samples.extend(health_r.samples)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if not errors:
        return r
    named = [e for e in errors if isinstance(e, ProbeError)]
    if len(named) < len(errors):
        raise next(e for e in errors if not isinstance(e, ProbeError))
    message = "; and ".join(str(e) for e in named)
    raise ProbeError(named[0].reason, message, partial=r) from named[0]


RUNTIME: KindRuntime[EventBusTarget, EventBusState] = KindRuntime(probe, EventBusState, classify)
