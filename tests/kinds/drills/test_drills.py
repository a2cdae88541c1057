"""The drills kind: records written by the paging drill (bundle.drill.write_record),
read from a directory or one file, served as the drill series."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bundle.drill import DrillResult, write_record
from exporter.config import ConfigError, parse
from exporter.kinds.drills.probe import KIND, DrillsState, DrillsTarget, parse_record
from exporter.probe import ProbeContext, ProbeError

from ...helpers import Running, scrape_until, value

Factory = Callable[..., Any]


def record(directory: Path, ok: bool, finished: float, drill_id: str) -> Path:
    """A record as the drill command writes it (file time = the drill's end)."""
    result = DrillResult(drill_id, "http://am:9093", {}, finished - 30, finished, ok)
    result.reason = None if ok else "no pagerduty notification was sent within 60s"
    path = write_record(result, directory)
    os.utime(path, (finished, finished))
    return path


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
    record(tmp_path, True, now - 3 * 86400, "old-ok")
    record(tmp_path, True, now - 86400, "ok")
    record(tmp_path, False, now - 600, "failed")
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
    first = record(tmp_path / "a", True, now - 100, "one")
    path = tmp_path / "latest.json"
    first.replace(path)
    state = DrillsState(t := target(path))
    try:
        assert (await probe_once(t, state))["tradeops_drill_last_success"] == 1
        second = record(tmp_path / "b", False, now - 10, "two")
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


def test_config_fields_and_errors(tmp_path: Path) -> None:
    config = parse(
        f"drills:\n  - {{name: shift-start, path: {tmp_path}, max_interval: 26h,"
        " calendar: always, glob: 'paging-drill-*.json'}\n",
        "c.yml",
    )
    (t,) = config.targets["drills"]
    assert isinstance(t, DrillsTarget)
    assert (t.max_interval, t.glob, t.path) == (93600, "paging-drill-*.json", tmp_path)
    with pytest.raises(ConfigError) as err:
        parse("drills:\n  - {name: d, path: /x, max_intervall: 1h}\n", "c.yml")
    assert err.value.lines() == ["c.yml: drills[0].max_intervall: unknown field"]
    with pytest.raises(ConfigError) as err:
        parse("drills:\n  - {name: d}\n", "c.yml")
    assert err.value.lines() == ["c.yml: drills[0].path: required field is missing"]


async def test_the_exporter_serves_the_records_and_fails_on_a_bad_one(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    now = time.time()
    drills = tmp_path / "drills"
    ok = record(drills, True, now - 60, "ok")
    run: Running = await exporter_factory(f"""
drills:
  - name: shift-start
    interval: 1s
    timeout: 800ms
    path: {drills}
    max_interval: 25h
  - name: missing
    interval: 1s
    timeout: 800ms
    path: {tmp_path / "nowhere"}
""")

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
