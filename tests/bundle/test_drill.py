"""The paging drill (python -m bundle.drill), run as a user runs it, against the
real Alertmanager with the shipped config and the local PagerDuty and Slack
stand-ins: the trigger and the resolve arrive, the record is written without
credentials, and the exporter's drills kind reads it. A drill that cannot page
(Alertmanager down, the drill silenced) fails, says why and records it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bundle.drill import main, parse_labels, public_url
from stack.alerting import wire_config
from stack.prometheus import Alertmanager
from stack.services import free_port
from stack.sinks import Sinks

from ..helpers import Running, scrape_until, value

ROOT = Path(__file__).resolve().parents[2]
Factory = Callable[..., Any]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Alertmanager, Sinks]]:
    root = tmp_path_factory.mktemp("drill")
    sinks = Sinks().start_in_thread()
    am = Alertmanager(root, config_text=wire_config(sinks, root / "secrets").text).start()
    try:
        yield am, sinks
    finally:
        am.stop()
        sinks.stop_thread()


def drill(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bundle.drill", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def the_record(directory: Path) -> dict[str, Any]:
    (path,) = directory.glob("paging-drill-*.json")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_a_drill_pages_resolves_and_leaves_a_record_the_exporter_reads(
    stack: tuple[Alertmanager, Sinks], tmp_path: Path, exporter_factory: Factory
) -> None:
    am, sinks = stack
    records = tmp_path / "drills"
    # credentials in the URL are used (Alertmanager ignores them here), never shown
    url = am.url.replace("http://", "http://oncall:hunter2@")
    started = time.time()
    out = await asyncio.to_thread(
        drill, "--alertmanager", url, "--duration", "2s", "--record-dir", str(records),
        "--label", "team=platform",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "hunter2" not in out.stdout + out.stderr and "oncall:" not in out.stdout
    lines = out.stdout.splitlines()
    assert lines[0].startswith("paging drill ") and lines[0].endswith(
        f"through {am.url}, firing for 2s"
    )
    assert "  firing for 15s: the route's group_wait is 10s" in lines
    assert any(
        line.startswith("  Alertmanager reports: state active, receivers")
        and "pagerduty-oncall (pagerduty), slack-oncall (slack)" in line
        for line in lines
    )
    assert "result: ok" in lines

    rec = the_record(records)
    assert "hunter2" not in json.dumps(rec)
    drill_id = rec["drill_id"]
    assert rec["result"] == "ok" and rec["reason"] is None
    assert rec["alertmanager"] == am.url
    assert rec["receivers"] == ["pagerduty-oncall", "slack-oncall"]
    assert rec["labels"] == {
        "alertname": "PagingDrill",
        "severity": "critical",
        "area": "exporter",
        "team": "platform",
        "drill": "true",
        "drill_id": drill_id,
    }
    assert rec["state"] == "active" and rec["inhibited_by"] == [] and rec["silenced_by"] == []
    assert rec["sent"]["pagerduty"] >= 1 and rec["resolve_sent"]["pagerduty"] >= 1
    assert 10 <= rec["first_sent_after"] <= 14
    assert started <= when(rec["started"]) < when(rec["finished"]) <= time.time()

    mine = sinks.matching(lambda n: n.mentions(drill_id))
    pages = [n for n in mine if n.sink == "pagerduty"]
    assert [n.event_action for n in pages] == ["trigger", "resolve"]
    assert pages[0].dedup_key == pages[1].dedup_key
    assert pages[0].receiver == "pagerduty-oncall"
    assert pages[0].body["payload"]["severity"] == "critical"
    assert [(n.sink, n.status) for n in mine if n.sink == "slack"] == [
        ("slack", "firing"),
        ("slack", "resolved"),
    ]
    assert sinks.rejections == []

    run: Running = await exporter_factory(
        f"drills:\n  - {{name: shift-start, interval: 1s, timeout: 800ms, path: {records}}}\n"
    )
    t = {"target": "shift-start"}
    m = await scrape_until(run, lambda m: value(m, "tradeops_drill_records", **t) == 1)
    assert value(m, "tradeops_drill_last_success", **t) == 1
    finished = pytest.approx(when(rec["finished"]), abs=0.01)
    assert value(m, "tradeops_drill_last_timestamp_seconds", **t) == finished
    assert value(m, "tradeops_drill_last_success_timestamp_seconds", **t) == finished
    assert value(m, "tradeops_drill_max_interval_seconds", **t) == 86400


async def test_a_drill_through_an_alertmanager_that_is_down_fails_and_says_so(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    records = tmp_path / "drills"
    url = f"http://127.0.0.1:{free_port()}"
    out = await asyncio.to_thread(drill, "--alertmanager", url, "--record-dir", str(records))
    assert out.returncode == 1, out.stdout + out.stderr
    result = [line for line in out.stdout.splitlines() if line.startswith("result:")]
    assert result == [
        f"result: FAILED: Alertmanager at {url} is not reachable (ClientConnectorError: Cannot"
        f" connect to host 127.0.0.1:{url.rsplit(':', 1)[1]} ssl:default [Connect call failed"
        f" ('127.0.0.1', {url.rsplit(':', 1)[1]})])"
    ]
    rec = the_record(records)
    assert rec["result"] == "failed" and "is not reachable" in rec["reason"]
    assert rec["receivers"] == [] and rec["sent"] == {}

    run: Running = await exporter_factory(
        f"drills:\n  - {{name: shift-start, interval: 1s, timeout: 800ms, path: {records}}}\n"
    )
    t = {"target": "shift-start"}
    m = await scrape_until(run, lambda m: value(m, "tradeops_drill_records", **t) == 1)
    assert value(m, "tradeops_drill_last_success", **t) == 0
    assert value(m, "tradeops_drill_last_success_timestamp_seconds", **t) is None


def _silence(am: Alertmanager, matcher: dict[str, Any]) -> str:
    now = datetime.now(UTC)
    body = {
        "matchers": [matcher],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
        "createdBy": "test",
        "comment": "drills are muted (a mistake the drill must catch)",
    }
    request = urllib.request.Request(
        f"{am.url}/api/v2/silences",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        silence_id: str = json.load(resp)["silenceID"]
        return silence_id


def _alerts(am: Alertmanager, query_filter: str) -> Any:
    with urllib.request.urlopen(f"{am.url}/api/v2/alerts?filter={query_filter}") as resp:
        return json.load(resp)


async def test_a_silenced_drill_fails_and_names_the_silence(
    stack: tuple[Alertmanager, Sinks], tmp_path: Path
) -> None:
    am, sinks = stack
    silence = _silence(am, {"name": "team", "value": "silenced", "isRegex": False})
    out = await asyncio.to_thread(
        drill, "--alertmanager", am.url, "--record-dir", str(tmp_path), "--label", "team=silenced"
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"result: FAILED: the drill alert is silenced by {silence}" in out.stdout
    rec = the_record(tmp_path)
    assert rec["state"] == "suppressed" and rec["silenced_by"] == [silence]
    # it resolved its alert on the way out
    assert await asyncio.to_thread(_alerts, am, "team%3D%22silenced%22") == []
    assert sinks.matching(lambda n: n.mentions(rec["drill_id"])) == []


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (
        ["--alertmanager", "http://am", "--label", "severity=warning"],
        ["--alertmanager", "http://am", "--label", "no-equals"],
        ["--alertmanager", "http://am", "--duration", "soon"],
        ["--alertmanager", "am:9093"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--label severity: set by the drill itself" in err
    assert "--alertmanager: expected an http:// or https:// URL" in err


def test_labels_and_urls() -> None:
    assert parse_labels(["team=execution", "env=prod"]) == {"team": "execution", "env": "prod"}
    assert public_url("https://u:p@am.example:9443/prefix/") == "https://am.example:9443/prefix"
    assert public_url("http://[::1]:9093") == "http://[::1]:9093"
