"""The drills probe: the records one kind of drill leaves behind, and their memory.

One target is one kind of drill (the shift-start paging drill of
``python -m bundle.drill``); ``path`` is a directory of JSON records (or one
file), and the series say when the newest drill ran, whether it passed, when
one last passed and the longest acceptable gap between two that pass, so the
bundle can alert when a drill that should have run did not. File reads run on
a worker thread under the run's deadline; records already parsed are cached
by file identity. What one run reads is bounded by the target's
``response_budget`` (default 4 MiB: a thousand records of a few KiB); a path
that names the wrong thing fails as ``exporter.file_io`` says.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...budget import ReadBudget
from ...file_io import (
    BlockingIO,
    file_error,
    file_identity,
    file_type,
    list_files,
    read_limited,
)
from ...probe import KindRuntime, ProbeContext, ProbeError, ProbeResult, ProbeState
from ..backups.sources import load_json, timestamp
from . import metrics as M
from .config import RESPONSE_BUDGET, DrillsTarget

RESULTS = {"ok": True, "failed": False}


@dataclass(frozen=True, slots=True)
class DrillRecord:
    """One drill: when it finished and whether it passed."""

    finished: float
    ok: bool


def parse_record(raw: bytes, what: str) -> DrillRecord:
    """A drill record (docs/alerting.md, "Paging drill"): ``result`` ok or failed
    and ``finished`` (Unix seconds or RFC 3339 with an offset; else ``started``)."""
    doc = load_json(raw, what)
    if not isinstance(doc, dict):
        raise ProbeError("protocol", f"{what}: expected a JSON object")
    result = doc.get("result")
    if result not in RESULTS:
        raise ProbeError("protocol", f"{what}: result must be ok or failed")
    when = doc.get("finished") or doc.get("started")
    if when is None:
        raise ProbeError("protocol", f"{what}: finished is missing")
    return DrillRecord(timestamp(when, f"{what}: finished"), RESULTS[result])


Identity = tuple[int, int, int, int]


class DrillsState(ProbeState):
    """Parsed records by path and file identity; the best success seen."""

    def __init__(self, target: DrillsTarget) -> None:
        self.budget = ReadBudget(target.response_budget or RESPONSE_BUDGET)
        self.io = BlockingIO()
        self.parsed: dict[Path, tuple[Identity, DrillRecord]] = {}
        self.best_success: float | None = None

    async def aclose(self) -> None:
        self.parsed.clear()


def _entries(target: DrillsTarget) -> list[tuple[Path, Identity]]:
    """The record files, newest first by mtime, at most ``max_records``."""
    try:
        st = target.path.stat()
    except FileNotFoundError:
        raise ProbeError("other", f"drill path {target.path} does not exist") from None
    except OSError as exc:
        raise file_error(exc, f"drill path {target.path}") from None
    if stat.S_ISREG(st.st_mode):
        return [(target.path, file_identity(st))]
    if not stat.S_ISDIR(st.st_mode):
        what = f"{target.path} is {file_type(st.st_mode)}"
        raise ProbeError("config", f"{what}, neither a record file nor a directory")
    return list_files(target.path, target.glob, target.max_records)


def _read_new(
    entries: list[tuple[Path, Identity]], known: dict[Path, Any], limit: int, budget: ReadBudget
) -> dict[Path, bytes]:
    """The bytes of the files not parsed before (blocking: runs on the worker)."""
    out: dict[Path, bytes] = {}
    for path, ident in entries:
        cached = known.get(path)
        if cached is None or cached[0] != ident:
            try:
                out[path] = read_limited(path, limit, budget)
            except FileNotFoundError:
                raise ProbeError("other", f"{path.name} was removed while being read") from None
    return out


async def _records(target: DrillsTarget, state: DrillsState) -> list[DrillRecord]:
    """The newest records, each file read and parsed once per identity."""
    entries = await state.io.call(_entries, target)
    raw = await state.io.call(
        _read_new, entries, state.parsed, target.max_record_bytes, state.budget
    )
    keep = {p for p, _ in entries}
    for path in [p for p in state.parsed if p not in keep]:
        del state.parsed[path]
    for path, ident in entries:
        if path in raw:  # a malformed record fails the run: each one is evidence
            state.parsed[path] = (ident, parse_record(raw[path], path.name))
    return [state.parsed[p][1] for p, _ in entries]


async def probe(target: DrillsTarget, ctx: ProbeContext[DrillsState]) -> ProbeResult:
    """Read the drill records of one target."""
    r = ProbeResult()
    name, state = target.name, ctx.state
    r.add(M.MAX_INTERVAL, target.max_interval, name)
    records = await _records(target, state)
    r.add(M.RECORDS, len(records), name)
    if not records:
        return r
    last = max(records, key=lambda d: d.finished)
    successes = [d.finished for d in records if d.ok]
    if state.best_success is not None:
        successes.append(state.best_success)  # an overwritten single file forgets it
    state.best_success = max(successes, default=None)
    r.add(M.LAST, last.finished, name)
    r.add(M.LAST_OK, last.ok, name)
    r.add(M.LAST_SUCCESS_TIMESTAMP, state.best_success, name)
    return r


RUNTIME: KindRuntime[DrillsTarget, DrillsState] = KindRuntime(probe, DrillsState)
