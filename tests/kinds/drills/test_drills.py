"""The drills kind: records written by the paging drill (bundle.drill.write_record),
read from a directory or one file, served as the drill series."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.kinds.drills import KIND, DrillsTarget
from exporter.kinds.drills.probe import DrillsState, parse_record
from exporter.probe import ProbeContext, ProbeError

from ... import faults
from ...fixtures_backups import drill_record
from ...helpers import Running, scrape_until, value

Factory = Callable[..., Any]


def target(path: Path, **extra: Any) -> DrillsTarget:
    return DrillsTarget.model_validate(
        {"name": "shift-start", "interval": 10, "timeout": 5, "path": str(path), **extra}
    )


async def probe_once(t: DrillsTarget, state: DrillsState) -> dict[str, float]:
    ctx = ProbeContext(state, asyncio.get_running_loop().time() + 10, time.time)
    r = await KIND.probe(t, ctx)
    return {s.family.name: s.value for s in r.samples}  # type: ignore[union-attr]


async def test_a_directory_of_records(tmp_path: Path) -> None:
    now = time.time()
    drill_record(tmp_path, True, now - 3 * 86400, "old-ok")
    drill_record(tmp_path, True, now - 86400, "ok")
    drill_record(tmp_path, False, now - 600, "failed")
    (tmp_path / "notes.txt").write_text("not a record")
    state = DrillsState(t := target(tmp_path))
    try:
        s = await probe_once(t, state)
    finally:
        await state.aclose()
    assert s == {
        "tradeops_drill_max_interval_seconds": 86400,
        "tradeops_drill_records": 3,
        "tradeops_drill_last_timestamp_seconds": pytest.approx(now - 600, abs=0.01),
        "tradeops_drill_last_success": 0,
        "tradeops_drill_last_success_timestamp_seconds": pytest.approx(now - 86400, abs=0.01),
    }


async def test_an_empty_directory_exports_the_count_and_the_interval(tmp_path: Path) -> None:
    state = DrillsState(t := target(tmp_path, max_interval="12h"))
    try:
        s = await probe_once(t, state)
    finally:
        await state.aclose()
    assert s == {"tradeops_drill_max_interval_seconds": 43200, "tradeops_drill_records": 0}


async def test_one_overwritten_file_remembers_the_last_success(tmp_path: Path) -> None:
    now = time.time()
    first = drill_record(tmp_path / "a", True, now - 100, "one")
    path = tmp_path / "latest.json"
    first.replace(path)
    state = DrillsState(t := target(path))
    try:
        assert (await probe_once(t, state))["tradeops_drill_last_success"] == 1
        second = drill_record(tmp_path / "b", False, now - 10, "two")
        second.replace(path)
        s = await probe_once(t, state)
    finally:
        await state.aclose()
    assert s["tradeops_drill_records"] == 1
    assert s["tradeops_drill_last_success"] == 0
    assert s["tradeops_drill_last_timestamp_seconds"] == pytest.approx(now - 10, abs=0.01)
    assert s["tradeops_drill_last_success_timestamp_seconds"] == pytest.approx(now - 100, abs=0.01)


def test_record_format() -> None:
    assert parse_record(b'{"result": "ok", "finished": "2026-11-23T08:00:00Z"}', "r").ok
    rec = parse_record(b'{"result": "failed", "started": 1700000000}', "r")
    assert (rec.ok, rec.finished) == (False, 1700000000.0)
    for raw, problem in [
        (b"{not json", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"result": "success", "finished": 1}', "result must be ok or failed"),
        (b'{"result": "ok"}', "finished is missing"),
        (b'{"result": "ok", "finished": "monday"}', "RFC 3339"),
    ]:
        with pytest.raises(ProbeError, match=problem) as err:
            parse_record(raw, "r")
        assert err.value.reason == "protocol"


async def test_the_exporter_serves_the_records_and_fails_on_a_bad_one(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    now = time.time()
    drills = tmp_path / "drills"
    ok = drill_record(drills, True, now - 60, "ok")
    rows = {
        "shift-start": f"path: {drills}, max_interval: 25h",
        "missing": f"path: {tmp_path / 'nowhere'}",
    }
    run: Running = await exporter_factory(
        faults.targets_yaml("drills", rows, "interval: 1s, timeout: 800ms")
    )

    def ran(m: Any) -> bool:
        runs = "tradeops_probe_runs_total"
        return all(
            (value(m, runs, kind="drills", target=n) or 0) >= 1 for n in ("shift-start", "missing")
        )

    m = await scrape_until(run, ran, timeout=20)
    t = {"target": "shift-start"}
    assert value(m, "tradeops_up", kind="drills", **t) == 1
    assert value(m, "tradeops_drill_records", **t) == 1
    assert value(m, "tradeops_drill_last_success", **t) == 1
    finished = json.loads(ok.read_text())["finished"]
    assert finished.endswith("Z")
    assert value(m, "tradeops_drill_last_success_timestamp_seconds", **t) == pytest.approx(
        now - 60, abs=0.01
    )
    assert value(m, "tradeops_drill_max_interval_seconds", **t) == 90000
    assert value(m, "tradeops_up", kind="drills", target="missing") == 0
    errors = "tradeops_probe_errors_total"
    assert (value(m, errors, kind="drills", target="missing", reason="other") or 0) >= 1
    assert value(m, "tradeops_drill_max_interval_seconds", target="missing") is None

    (drills / "broken.json").write_text("{half a record")
    m = await scrape_until(
        run, lambda m: value(m, "tradeops_up", kind="drills", **t) == 0, timeout=20
    )
    assert (value(m, errors, kind="drills", reason="protocol", **t) or 0) >= 1
    assert value(m, "tradeops_drill_last_success", **t) is None
