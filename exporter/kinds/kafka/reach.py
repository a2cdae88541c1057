"""Per-broker reach: each request of a cycle under its own deadline.

A broker that fails one request (connection error, timeout, an error code for
the whole request) is not asked again this cycle and is reported unreachable;
the cycle goes on with what the other brokers answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiokafka.errors as kerr

from ...probe import ProbeError, classify_error
from .client import classify, describe

PHASES = 5
"""Metadata, ListGroups, DescribeGroups, OffsetFetch, ListOffsets: in this order."""


class Sender(Protocol):
    """What sends one request to one broker (the probe's state, counting it)."""

    async def send(self, node: int, request: Any) -> Any:
        """The broker's answer."""


def requests_end(deadline: float, timeout: float) -> float:
    """When the cycle's requests must be done: a tenth of the timeout before the run's
    deadline, left for building the series and reporting brokers that did not answer."""
    return deadline - timeout * 0.1


@dataclass(slots=True)
class Reach:
    """One cycle's time budget for requests and the brokers that failed one.

    Each request of a phase (one request kind sent to several brokers) may wait for an
    equal share of the time left with the phases after it, so a hung broker costs each
    phase at most its share and the healthy brokers' later phases still run; a phase
    of many healthy requests (OffsetFetch on a large cluster) may run until ``end``.
    """

    end: float
    """``loop.time()`` by which every request is done (see ``requests_end``)."""
    failed: dict[int, str] = field(default_factory=dict)
    """Broker id -> what failed (masked); a failed broker is not asked again this cycle."""
    errors: dict[int, BaseException] = field(default_factory=dict)
    """Broker id -> the exception of its first failure."""

    def share(self, phases_left: int) -> float:
        """Seconds one request of a phase followed by ``phases_left - 1`` others may wait."""
        return max(0.0, self.end - asyncio.get_running_loop().time()) / max(1, phases_left)

    def fail(self, node: int, what: str, exc: BaseException, detail: str | None = None) -> None:
        """Note that ``node`` failed ``what`` (the first failure per broker is kept)."""
        if node not in self.failed:
            self.failed[node] = f"{what}: {detail or describe(exc)}"
            self.errors[node] = exc

    def error(self) -> ProbeError:
        """The run's error once no broker answered, with the reason of the broker with
        the lowest id: brokers are asked in random order, and brokers failing for
        different reasons must still give one reason on every run."""
        first = self.errors.get(min(self.errors)) if self.errors else None
        reason = classify_error(first, classify) if first is not None else "protocol"
        detail = "; ".join(f"broker {n}: {e}" for n, e in sorted(self.failed.items()))
        return ProbeError(reason, f"no broker answered: {detail}")


async def ask(st: Sender, reach: Reach, node: int, request: Any, wait: float, what: str) -> Any:
    """``request``'s answer from ``node`` within ``wait`` seconds (and by ``reach.end``),
    or None when it failed (the broker is then noted as failed) or was not sent (the
    broker failed before, no time left)."""
    loop = asyncio.get_running_loop()
    until = min(reach.end, loop.time() + wait)
    seconds = until - loop.time()
    if node in reach.failed or seconds <= 0:
        return None
    try:
        async with asyncio.timeout_at(until):
            return await st.send(node, request)
    except TimeoutError as exc:
        reach.fail(node, what, exc, f"no answer within {seconds:.2f}s")
    except (kerr.KafkaError, OSError) as exc:
        reach.fail(node, what, exc)
    return None
