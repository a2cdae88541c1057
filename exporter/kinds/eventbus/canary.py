"""The canary part of a run: publish canaries on the bus transport and read them back.

The counters and the round-trip histogram live in the target's state (``tracker``),
so a failed run loses nothing: the losses show on the next success, and the
counters are served whether the run succeeds or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...probe import ProbeError, ProbeResult, classify_error
from ...redact import error_text
from . import metrics as M
from .client import classify
from .config import CanaryConfig, EventBusTarget
from .tracker import decode, encode
from .transport import Transport

if TYPE_CHECKING:
    from .probe import EventBusState


async def canary(
    r: ProbeResult,
    target: EventBusTarget,
    state: EventBusState,
    until: float,
    now: Callable[[], float],
) -> None:
    """Publish canaries and read them back, by ``loop.time()`` ``until`` (``now``: the
    wall clock); failures name the transport. The counters are added either way."""
    assert target.canary is not None
    try:
        await _round(target, state, until, now)
    except asyncio.CancelledError:
        state.transport_started = False  # half-used: rebuilt on the next run
        raise
    except ProbeError:
        await state.drop_transport()
        raise
    except Exception as exc:
        await state.drop_transport()
        reason = classify_error(exc, classify)
        transport_name = target.canary.transport_name
        raise ProbeError(reason, f"canary via {transport_name}: {error_text(exc)}") from exc
    finally:
        _samples(r, target, state)


async def _round(
    target: EventBusTarget, state: EventBusState, until: float, now: Callable[[], float]
) -> None:
    assert target.canary is not None
    cfg, tracker = target.canary, state.tracker
    tracker.expire(asyncio.get_running_loop().time(), cfg.deadline)
    transport, mine = await _publish(target, state, until)
    await _read_back(transport, state, cfg, mine, until, now)
    transport.idle()
    _verdict(state, cfg, mine)


async def _publish(
    target: EventBusTarget, state: EventBusState, until: float
) -> tuple[Transport, list[int]]:
    """Publish ``count`` canaries, one at a time; a refused one is lost at once."""
    assert target.canary is not None
    cfg, tracker = target.canary, state.tracker
    loop = asyncio.get_running_loop()
    mine: list[int] = []
    for _ in range(cfg.count):
        seq = tracker.new(loop.time())
        mine.append(seq)
        try:
            async with asyncio.timeout_at(min(until, loop.time() + cfg.deadline)):
                transport = await state.canary_transport(target)
                await transport.publish(encode(state.instance, target.name, seq))
        except BaseException:
            tracker.failed(seq)
            raise
    return transport, mine


async def _read_back(
    transport: Transport,
    state: EventBusState,
    cfg: CanaryConfig,
    mine: list[int],
    until: float,
    now: Callable[[], float],
) -> None:
    """Poll until this run's canaries are back, the first one's deadline or ``until``."""
    tracker = state.tracker
    loop = asyncio.get_running_loop()
    end = min(until, tracker.pending.get(mine[0], loop.time()) + cfg.deadline)
    while any(s in tracker.pending for s in mine) and (left := end - loop.time()) > 0:
        for raw in await transport.poll(left):
            got = decode(raw, state.instance)
            if got is not None:
                tracker.seen(got, loop.time(), now(), cfg.deadline)


def _verdict(state: EventBusState, cfg: CanaryConfig, mine: list[int]) -> None:
    """Fail the run when a canary was lost, or is still in flight at the run's end."""
    tracker = state.tracker
    lost_before = tracker.lost
    tracker.expire(asyncio.get_running_loop().time(), cfg.deadline)
    waiting = [s for s in mine if s in tracker.pending]
    if tracker.lost > lost_before:
        raise ProbeError(
            "timeout",
            f"canary via {cfg.transport_name}: {tracker.lost - lost_before} not read back "
            f"within {cfg.deadline:g}s",
        )
    if waiting:
        raise ProbeError(
            "timeout",
            f"canary via {cfg.transport_name}: {len(waiting)} not back before the run's deadline",
        )


def _samples(r: ProbeResult, target: EventBusTarget, state: EventBusState) -> None:
    t, name = state.tracker, target.name
    r.add_histogram(t.rtt.sample(M.CANARY_ROUNDTRIP, name))
    r.add(M.CANARY_LAST_ROUNDTRIP, t.last_rtt, name)
    r.add(M.CANARY_SENT, t.sent, name)
    r.add(M.CANARY_RECEIVED, t.received, name)
    r.add(M.CANARY_LOST, t.lost, name)
    r.add(M.CANARY_OUT_OF_ORDER, t.out_of_order, name)
    r.add(M.CANARY_LAST_SUCCESS, t.last_success, name)
