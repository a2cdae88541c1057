"""Fixtures and helpers for the backups and drills tests: a PostgreSQL of their own
with WAL archiving to a real pgBackRest stanza (one full backup taken), some data
worth dumping, drill records as the paging drill writes them, and the targets and
runs both kinds' suites share."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bundle.drill import DrillResult, write_record
from exporter.kinds.backups import KIND as BACKUPS
from exporter.kinds.backups import BackupTarget
from exporter.kinds.backups.probe import BackupState
from exporter.model import TargetBase
from exporter.probe import ProbeContext, ProbeKind, ProbeResult
from stack import Postgres
from stack.backups import PgBackRest

from . import faults
from .helpers import service_root
from .hostile import FileBehaviour, record_fault

T = TypeVar("T", bound=TargetBase)


@pytest.fixture(scope="module")
def archived_pg() -> Iterator[tuple[Postgres, PgBackRest]]:
    """PostgreSQL with archive_mode on and a pgBackRest stanza holding one full backup.

    Its own cluster: turning on archiving restarts the server, which the shared
    session cluster must not suffer.
    """
    with service_root("backups") as root:
        yield from _archived(root)


def _archived(root: Path) -> Iterator[tuple[Postgres, PgBackRest]]:
    pg = Postgres(root).start()
    try:
        pg.psql(
            "CREATE TABLE ticks (ts timestamptz NOT NULL, px numeric);"
            "INSERT INTO ticks SELECT now() - i * interval '1 second', i"
            " FROM generate_series(1, 20000) i"
        )
        rest = PgBackRest(pg, root).setup()
        rest.backup("full")
        rest.switch_wal()
        yield pg, rest
    finally:
        pg.stop()


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    """An empty directory for dumps and manifests."""
    d = tmp_path / "dumps"
    d.mkdir()
    return d


# --- backups: targets and single runs -----------------------------------------------


def backups_yaml(source: str, extra: str = "", interval: str = "1s", timeout: str = "800ms") -> str:
    """A config of one backup set named ``set``; ``extra`` holds indented target lines."""
    return f"""
backups:
  - name: set
    interval: {interval}
    timeout: {timeout}
    source: {source}
{extra}
"""


def backup_target(source: dict[str, Any], **extra: Any) -> BackupTarget:
    """The backup set ``set`` reading ``source``."""
    return BackupTarget.model_validate(
        {"name": "set", "interval": 10, "timeout": 5, "source": source, **extra}
    )


async def probe_once(target: BackupTarget, state: BackupState) -> ProbeResult:
    """One run of the backups probe with a generous deadline."""
    ctx = ProbeContext(state, asyncio.get_running_loop().time() + 30, time.time)
    return await BACKUPS.probe(target, ctx)


def samples(r: ProbeResult) -> dict[tuple[str, tuple[str, ...]], float]:
    """A result's values by (family name, label values)."""
    return {(s.family.name, s.labels): s.value for s in r.samples}  # type: ignore[union-attr]


# --- drills ---------------------------------------------------------------------------


def drill_record(directory: Path, ok: bool, finished: float, drill_id: str) -> Path:
    """A record as the drill command writes it (file time = the drill's end)."""
    result = DrillResult(drill_id, "http://am:9093", {}, finished - 30, finished, ok)
    result.reason = None if ok else "no pagerduty notification was sent within 60s"
    path = write_record(result, directory)
    os.utime(path, (finished, finished))
    return path


# --- the fault suites -----------------------------------------------------------------


def hostile_target(section: str, model: type[T], name: str, **fields: str) -> T:
    """The ``section`` target ``name`` with ``fields`` (YAML values, in order), parsed
    as the loader does."""
    lines = "".join(f"    {key}: {val}\n" for key, val in fields.items())
    return faults.parse_target(f"{section}:\n  - name: {name}\n{lines}", section, model)


async def check_refused(
    kind: ProbeKind[T, Any], target: T, behaviour: FileBehaviour, slowest: float
) -> None:
    """Five runs on a hostile file have its one reason, each within ``slowest`` seconds
    (refused, never waited for); the huge file and the FIFOs are not read and no
    worker thread is left behind."""
    before = faults.io_threads()
    outs, state = await faults.fresh_runs(kind, target, 5)
    assert faults.same_reason(outs) == faults.FILE_REASONS[behaviour]
    assert max(o.duration for o in outs) < slowest
    assert state.budget.used < 8192
    await asyncio.sleep(0.05)  # a run's worker ends just after handing its result
    assert faults.io_threads() == before
    record_fault(kind.name, behaviour, faults.FILE_REASONS[behaviour])
