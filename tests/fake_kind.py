"""A small probe kind that no configuration file can name: it forces paths no real
kind takes (a family it never declared, a state that is slow to close), which is
why it is a fake rather than a real service."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from exporter.catalogue import Family, family
from exporter.catalogue import core as C
from exporter.model import TargetBase
from exporter.probe import KindRuntime, ProbeContext, ProbeKind, ProbeResult, ProbeState

DECLARED = family("fake_value", "gauge", "A value the fake kind declares.", "target")
UNDECLARED = family("fake_stray", "gauge", "A family the fake kind never declared.", "target")


class FakeTarget(TargetBase):
    """``address`` only; ``stray`` makes the probe emit an undeclared family."""

    address: str = "fake:1"
    stray: bool = False


@dataclass
class FakeState(ProbeState):
    """Counts runs; closing takes ``close_seconds``."""

    close_seconds: float = 0.0
    runs: int = 0
    closed: list[float] = field(default_factory=list)

    async def aclose(self) -> None:
        await asyncio.sleep(self.close_seconds)
        self.closed.append(asyncio.get_running_loop().time())


async def _probe(target: FakeTarget, ctx: ProbeContext[FakeState]) -> ProbeResult:
    ctx.state.runs += 1
    result = ProbeResult()
    result.add(DECLARED, float(ctx.state.runs), target.name)
    if target.stray:
        result.add(UNDECLARED, 1.0, target.name)
        result.add(C.BUILD_INFO, 1.0, "v", "b", "p")  # a framework family: not the kind's
    return result


def fake_kind(
    close_seconds: float = 0.0, families: tuple[Family, ...] = (DECLARED,)
) -> ProbeKind[FakeTarget, FakeState]:
    """A kind named ``fake`` whose states take ``close_seconds`` to close."""
    runtime: KindRuntime[FakeTarget, FakeState] = KindRuntime(
        _probe, lambda target: FakeState(close_seconds)
    )
    return ProbeKind(
        name="fake",
        target_model=FakeTarget,
        families=families,
        load=lambda: runtime,
        address_field="address",
        example_address="fake:1",
    )
