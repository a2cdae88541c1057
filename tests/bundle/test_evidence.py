"""Session evidence (bundle/evidence.py) from a real Prometheus: the stack's
Prometheus (behind basic auth) loads the repository's rules and scrapes the
real exporter, which probes a real Redis holding the SLA packet's heartbeat
keys. The command runs over the first ~30 s of that Prometheus' life."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from bundle.build import ROOT
from bundle.evidence import fired_alerts, parse_time, queries, stamp, window
from bundle.release import version
from stack.exporter import Exporter
from stack.prometheus import Prometheus
from stack.redis_server import Redis
from stack.services import free_port, wait_for_port

USER = "archivist"
PASSWORD = "s3cret-" + secrets.token_hex(6)
WINDOW_S = 30.0


class AuthPrometheus(Prometheus):
    """The stack's Prometheus with basic auth on its HTTP API (a web config file)."""

    def prepare(self) -> None:
        super().prepare()
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        (self.dir / "web.yml").write_text(yaml.safe_dump({"basic_auth_users": {USER: hashed}}))

    def command(self) -> list[str]:
        return [*super().command(), f"--web.config.file={self.dir / 'web.yml'}"]

    def wait_ready(self) -> None:
        wait_for_port(self.port, self.ready_timeout, self.proc)
        end = time.monotonic() + self.ready_timeout
        while time.monotonic() < end:
            try:
                get(self, "/-/ready")
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("prometheus not ready")


def get(prom: Prometheus, path: str) -> Any:
    request = urllib.request.Request(
        f"http://{prom.address}{path}",
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        },
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        body = resp.read()
    return json.loads(body) if path.startswith("/api/") else body


def instant(prom: Prometheus, expr: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = get(
        prom, "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    )["data"]["result"]
    return found


@dataclass
class Run:
    prom: Prometheus
    start: float
    end: float
    out: Path
    proc: subprocess.CompletedProcess[str]

    def url(self, password: str = PASSWORD) -> str:
        return f"http://{USER}:{password}@{self.prom.address}"


def evidence(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bundle.evidence", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("evidence")
    redis = Redis(root).start()
    services: list[Any] = [redis]
    try:
        now = time.time()
        import redis as redis_client

        client = redis_client.Redis(host="127.0.0.1", port=redis.port)
        client.set("heartbeat:ingestion", int(now))
        client.set("heartbeat:execution", int(now * 1000))
        client.hset("heartbeats", "risk", int(now))
        client.close()
        config = root / "exporter.yml"
        config.write_text(
            f"""
redis:
  - name: cache
    address: {redis.address}
    interval: 1s
    timeout: 500ms
    heartbeats:
      - {{name: ingestion, key: "heartbeat:ingestion"}}
      - {{name: execution, key: "heartbeat:execution", max_gap: 10s}}
      - {{name: feature_store, key: "heartbeat:feature_store"}}
      - {{name: risk, key: "heartbeats", field: risk}}
"""
        )
        exporter = Exporter(root, config).start()
        services.append(exporter)
        rules = sorted(str(p) for p in (ROOT / "rules").glob("*.yml"))
        start = time.time()
        prom = AuthPrometheus(
            root, scrape_targets=[exporter.address], rule_files=rules, scrape_interval="1s"
        ).start()
        services.append(prom)
        deadline = time.monotonic() + 60
        while not (
            instant(prom, 'ALERTS{alertname="Watchdog", alertstate="firing"}')
            and instant(prom, "tradeops:overall_status")
            and instant(prom, "tradeops_redis_heartbeat_timestamp_seconds")
        ):
            assert time.monotonic() < deadline, "Prometheus did not evaluate the rules"
            time.sleep(0.5)
        time.sleep(max(0.0, start + WINDOW_S - time.time()))
        end = time.time()
        out = root / "evidence"
        proc = evidence(
            "--prometheus",
            f"http://{USER}:{PASSWORD}@{prom.address}/",
            "--start",
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
            "--end",
            f"{end:.3f}",
            "--step",
            "2s",
            "--out",
            str(out),
        )
        yield Run(prom, float(int(start)), end, out, proc)
    finally:
        for service in reversed(services):
            service.stop()


def _document(run: Run) -> tuple[dict[str, Any], Path]:
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    (path,) = run.out.glob("metrics_*.json.gz")
    doc: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    return doc, path


def _query(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (q,) = [q for q in doc["queries"] if q["name"] == name]
    found: dict[str, Any] = q
    return found


def test_the_file_and_its_manifest_are_written_and_verify(run: Run) -> None:
    doc, path = _document(run)
    assert path.name == f"metrics_{stamp(run.end)}.json.gz"
    manifest = path.with_name(path.name.removesuffix(".json.gz") + ".sha256")
    assert manifest.read_text() == f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"
    check = subprocess.run(
        ["sha256sum", "-c", "--strict", manifest.name],
        cwd=run.out,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0 and check.stdout == f"{path.name}: OK\n", check.stdout
    assert str(path) in run.proc.stdout and str(manifest) in run.proc.stdout
    size = path.stat().st_size
    raw = len(gzip.decompress(path.read_bytes()))
    series = sum(len(q["data"].get("result", [])) for q in doc["queries"])
    print(
        f"\nevidence: {path.name} {size} bytes ({raw} bytes of JSON), window "
        f"{run.end - run.start:.0f}s at 2s, {len(doc['queries'])} queries, {series} series, "
        f"{len(doc['alerts_fired'])} alerts fired"
    )


def test_the_document_says_what_it_is(run: Run) -> None:
    doc, _ = _document(run)
    assert doc["format"] == 1 and doc["kind"] == "session_evidence"
    assert doc["prometheus"] == f"http://{run.prom.address}"
    assert doc["bundle_version"] == version()
    w = doc["window"]
    assert w["start_unix"] == run.start and abs(w["end_unix"] - run.end) < 0.001
    assert w["step_seconds"] == 2.0
    assert parse_time(w["start"]) == run.start
    expected = {q.name: q.expr for q in queries()}
    ran = {q["name"]: q["query"] for q in doc["queries"] if q["endpoint"].endswith("query_range")}
    assert ran == expected
    for q in doc["queries"]:
        if q["endpoint"].endswith("query_range"):
            assert q["data"]["resultType"] == "matrix"
            assert (q["start"], q["step"]) == (str(int(run.start)), "2")


def test_sla_series_come_with_the_sla_rules_selectors(run: Run) -> None:
    doc, _ = _document(run)
    ages = _query(doc, "heartbeat_age_seconds")
    assert 'heartbeat=~"ingestion|feature_store|execution"' in ages["query"]
    assert 'job="tradeops"' in ages["query"]
    beats = {s["metric"]["heartbeat"]: s["values"] for s in ages["data"]["result"]}
    assert set(beats) == {"ingestion", "execution"}  # feature_store's key does not exist
    for values in beats.values():
        assert len(values) >= 5
        assert all(0 <= float(v) < 120 for _, v in values)
    present = {
        s["metric"]["heartbeat"]: s["values"][-1][1]
        for s in _query(doc, "heartbeat_present")["data"]["result"]
    }
    assert present == {"ingestion": "1", "execution": "1", "feature_store": "0"}
    risk = _query(doc, "risk_heartbeat_age_seconds")
    assert [s["metric"]["heartbeat"] for s in risk["data"]["result"]] == ["risk"]
    drift = _query(doc, "position_drift_ratio")
    assert drift["query"] == 'tradeops_runtime_position_drift_ratio{job="trading-runtime"}'
    assert drift["data"]["result"] == []  # no trading runtime is scraped here
    assert _query(doc, "order_ack_latency_p95_seconds")["data"]["result"] == []


def test_readiness_is_in_the_evidence(run: Run) -> None:
    doc, _ = _document(run)
    areas = {s["metric"]["area"] for s in _query(doc, "area_status")["data"]["result"]}
    assert {"exporter", "redis", "sla", "fix", "kafka"} <= areas
    (overall,) = _query(doc, "overall_status")["data"]["result"]
    assert len(overall["values"]) >= 5
    targets = _query(doc, "target_status")["data"]["result"]
    assert {(s["metric"]["area"], s["metric"]["target"]) for s in targets} >= {("redis", "cache")}


def test_the_watchdog_is_among_the_fired_alerts(run: Run) -> None:
    doc, _ = _document(run)
    (watchdog,) = [a for a in doc["alerts_fired"] if a["alertname"] == "Watchdog"]
    assert watchdog["labels"]["severity"] == "none"
    assert "alertstate" not in watchdog["labels"]
    assert run.start <= watchdog["first_seen_unix"] <= watchdog["last_seen_unix"] <= run.end
    assert watchdog["last_seen_unix"] - watchdog["first_seen_unix"] > WINDOW_S / 2
    assert watchdog["samples"] > 10  # every 1 s evaluation, not every 2 s step
    (q,) = [q for q in doc["queries"] if q["name"] == "alerts_fired"]
    assert q["endpoint"] == "/api/v1/query"
    assert q["query"].startswith('ALERTS{alertstate="firing"}[')
    assert q["data"]["alerts"] == len(doc["alerts_fired"])


def test_credentials_are_used_but_never_written_or_printed(run: Run) -> None:
    _, path = _document(run)
    text = gzip.decompress(path.read_bytes()).decode()
    for where in (
        text,
        run.proc.stdout,
        run.proc.stderr,
        *(p.read_text() for p in run.out.glob("*.sha256")),
    ):
        assert PASSWORD not in where and f"{USER}:" not in where
    assert not list(run.out.glob(".*"))  # no temporary file left behind


def test_a_wrong_password_fails_cleanly(run: Run, tmp_path: Path) -> None:
    out = evidence(
        "--prometheus", run.url("wrong-" + PASSWORD), "--last", "10s", "--out", str(tmp_path)
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.startswith(
        f"bundle.evidence: Prometheus at http://{run.prom.address} answered 401"
    )
    assert "Traceback" not in out.stderr and PASSWORD not in out.stderr + out.stdout
    assert not list(tmp_path.iterdir())


def test_an_error_answer_fails_cleanly(run: Run, tmp_path: Path) -> None:
    out = evidence(  # a path under which no Prometheus API answers
        "--prometheus", run.url() + "/not-prometheus", "--last", "10s", "--out", str(tmp_path)
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"Prometheus at http://{run.prom.address}/not-prometheus answered 404" in out.stderr
    assert PASSWORD not in out.stderr + out.stdout
    assert not list(tmp_path.iterdir())


def test_an_unreachable_prometheus_fails_cleanly(tmp_path: Path) -> None:
    port = free_port()
    out = evidence(
        "--prometheus",
        f"http://{USER}:{PASSWORD}@127.0.0.1:{port}",
        "--last",
        "1m",
        "--out",
        str(tmp_path),
    )
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"bundle.evidence: Prometheus at http://127.0.0.1:{port} is unreachable: "
    )
    assert "Connection refused" in out.stderr
    assert "Traceback" not in out.stderr and PASSWORD not in out.stderr + out.stdout
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--last", "1h", "--start", "0"], "--last excludes --start and --end"),
        (["--start", "0"], "give --start and --end, or --last"),
        (["--start", "100", "--end", "50"], "the window ends before it starts"),
        (["--start", "2026-12-01T10:00:00", "--end", "0"], "give a time zone"),
        (["--start", "yesterday", "--end", "0"], "expected RFC 3339 or Unix seconds"),
        (["--last", "8h", "--step", "1s"], "use a larger --step"),
    ],
)
def test_bad_windows_are_refused(args: list[str], message: str) -> None:
    out = evidence("--prometheus", "http://127.0.0.1:9", *args)
    assert out.returncode == 2 and message in out.stderr, out.stderr


def test_windows_and_stamps() -> None:
    assert window(None, None, "8h", "30s", 1_000_000.0) == (1_000_000.0 - 28800, 1_000_000.0, 30.0)
    t0, t1, _ = window("2026-12-01T08:30:00Z", "2026-12-01T11:30:00-05:00", None, "30s", 0)
    assert t1 - t0 == 8 * 3600
    assert stamp(t1) == "20261201T163000Z"
    assert parse_time("1764606600") == 1764606600.0


def test_fired_alerts_summarise_raw_samples() -> None:
    matrix = [
        {
            "metric": {"__name__": "ALERTS", "alertname": "B", "alertstate": "firing", "x": "1"},
            "values": [[30.5, "1"], [10, "1"], [20, "1"]],
        },
        {
            "metric": {"__name__": "ALERTS", "alertname": "A", "alertstate": "firing"},
            "values": [[5, "1"]],
        },
    ]
    a, b = fired_alerts(matrix)
    assert (a["alertname"], a["first_seen_unix"], a["last_seen_unix"], a["samples"]) == (
        "A",
        5,
        5,
        1,
    )
    assert b["labels"] == {"x": "1"}
    assert (b["first_seen"], b["last_seen"], b["samples"]) == (
        "1970-01-01T00:00:10.000Z",
        "1970-01-01T00:00:30.500Z",
        3,
    )
