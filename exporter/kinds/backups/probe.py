"""The backups probe: one run over one backup set's source, and the set's memory.

One target is one backup set; its ``source`` is a directory of backups (JSON
manifests or bare files), ``pgbackrest info`` (run or saved) or restore-drill
records. Every subprocess and file operation is bounded by the run's deadline,
and what one run reads (manifests, drill records, saved or live pgBackRest output,
a command's stderr) by the target's ``response_budget`` (default 32 MiB); the
checksum's reading is bounded by ``checksum.bytes_per_run`` instead. How a
hostile path or command fails: ``exporter.file_io`` and ``exporter.commands``.
"""

from __future__ import annotations

from ...budget import ReadBudget
from ...file_io import BlockingIO
from ...probe import KindRuntime, ProbeContext, ProbeResult, ProbeState
from .checksum import Checksums
from .collect import directory, drills, objective_series, pgbackrest
from .config import RESPONSE_BUDGET, BackupTarget, DirectorySource, PgBackRestSource
from .files import Parsed


class BackupState(ProbeState):
    """Parsed manifests and drill records by file identity, checksum progress and the
    newest restore-drill success seen."""

    def __init__(self, target: BackupTarget) -> None:
        self.budget = ReadBudget(target.response_budget or RESPONSE_BUDGET)
        self.io = BlockingIO()
        self.parsed: Parsed = {}
        self.checksums = Checksums()
        self.best_drill_success: float | None = None

    async def aclose(self) -> None:
        self.parsed.clear()
        self.checksums.pending = None


async def probe(target: BackupTarget, ctx: ProbeContext[BackupState]) -> ProbeResult:
    """Probe one backup set."""
    r = ProbeResult()
    objective_series(r, target)
    src = target.source
    if isinstance(src, DirectorySource):
        await directory(r, target, src, ctx)
    elif isinstance(src, PgBackRestSource):
        await pgbackrest(r, target, src, ctx)
    else:
        await drills(r, target, src, ctx)
    return r


RUNTIME: KindRuntime[BackupTarget, BackupState] = KindRuntime(probe, BackupState)
