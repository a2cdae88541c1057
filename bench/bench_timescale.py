"""Benchmark: the timescale probe vs Debian's prometheus-postgres-exporter.

One PostgreSQL cluster with ~200 small tables (each with a time index and a
few rows). Each exporter in turn, alone against it:

- this exporter watches every table's freshness (one target, 200 tables) and
  probes on a 1 s interval; CPU per probe cycle is measured while nothing
  scrapes it, then ``/metrics`` latency over many scrapes;
- postgres_exporter queries on every scrape, so a scrape is its cycle: CPU per
  scrape and ``/metrics`` latency over the same number of scrapes.

CPU is user+system time of the exporter process, and of the PostgreSQL
backends serving it. Prints medians, p99, ratios and series counts.
Run: ``.venv/bin/python bench/bench_timescale.py [--tables 200] [--scrapes 300] [--json F]``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import Report, add_json_argument, median, p99, peer_version
from stack import Exporter, Postgres, Service
from stack.services import find_binary, wait_for_http

PASSWORD_ENV = "BENCH_PG_PASSWORD"


class PostgresExporter(Service):
    """Debian's prometheus-postgres-exporter, configured through DATA_SOURCE_NAME."""

    name = "postgres_exporter"

    def __init__(self, root: Path, dsn: str) -> None:
        super().__init__(root)
        self._dsn = dsn

    def command(self) -> list[str]:
        return [
            find_binary("prometheus-postgres-exporter"),
            f"--web.listen-address={self.address}",
        ]

    def popen_kwargs(self) -> dict[str, Any]:
        return {"env": {**os.environ, "DATA_SOURCE_NAME": self._dsn}}

    def wait_ready(self) -> None:
        super().wait_ready()
        wait_for_http(f"http://{self.address}/metrics", self.ready_timeout)


def make_tables(pg: Postgres, database: str, count: int) -> None:
    """``count`` tables ``public.t000``... with a time index and five rows each."""
    pg.psql(f"CREATE DATABASE {database}")
    pg.psql(
        f"""
        DO $$ BEGIN
          FOR i IN 0..{count - 1} LOOP
            EXECUTE format('CREATE TABLE t%s (time timestamptz NOT NULL, v float8)',
                           lpad(i::text, 3, '0'));
            EXECUTE format('CREATE INDEX ON t%s (time)', lpad(i::text, 3, '0'));
            EXECUTE format('INSERT INTO t%s SELECT now() - g * interval ''1 s'', g
                            FROM generate_series(1, 5) g', lpad(i::text, 3, '0'));
          END LOOP;
        END $$;
        ANALYZE;
        """,
        database,
    )


def our_config(pg: Postgres, database: str, count: int) -> dict[str, Any]:
    tables = [
        {"name": f"t{i:03d}", "table": f"t{i:03d}", "freshness_sla": "60s"} for i in range(count)
    ]
    target = {
        "name": "bench",
        "address": pg.address,
        "database": database,
        "user": "postgres",
        "password": f"${{{PASSWORD_ENV}}}",
        "sslmode": "disable",
        "interval": "1s",
        "timeout": "900ms",
        "tables": tables,
    }
    return {"timescale": [target]}


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def backend_cpu(postmaster_pid: int) -> float:
    """CPU of the PostgreSQL backends, including those already exited (reaped)."""
    pm = psutil.Process(postmaster_pid)
    t = pm.cpu_times()
    total = float(t.children_user + t.children_system)
    for child in pm.children():
        try:
            total += cpu_seconds(child)
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class Figures:
    name: str
    latencies: list[float]
    series: int
    cpu_per_cycle: float
    db_cpu_per_cycle: float


def scrape_series(conn: http.client.HTTPConnection) -> tuple[float, int]:
    start = time.perf_counter()
    conn.request("GET", "/metrics")
    resp = conn.getresponse()
    body = resp.read()
    elapsed = time.perf_counter() - start
    assert resp.status == 200, resp.status
    lines = body.decode().splitlines()
    return elapsed, sum(1 for ln in lines if ln and not ln.startswith("#"))


def scrapes(service: Service, n: int) -> tuple[list[float], int]:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        scrape_series(conn)  # warm-up
        out = []
        series = 0
        for _ in range(n):
            elapsed, series = scrape_series(conn)
            out.append(elapsed)
        return out, series
    finally:
        conn.close()


def probe_runs(service: Service) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        for line in conn.getresponse().read().decode().splitlines():
            if line.startswith("tradeops_probe_runs_total{") and 'kind="timescale"' in line:
                return float(line.rsplit(" ", 1)[1])
    finally:
        conn.close()
    raise RuntimeError("no probe runs reported")


def bench_ours(
    root: Path, pg: Postgres, database: str, tables: int, n: int, window: float
) -> Figures:
    config = root / "exporter.yml"
    config.write_text(yaml.safe_dump(our_config(pg, database, tables)))
    os.environ[PASSWORD_ENV] = pg.password
    exp = Exporter(root, config).start()
    try:
        assert exp.proc is not None
        proc = psutil.Process(exp.proc.pid)
        time.sleep(3)  # first runs, pool opened, statements prepared
        runs0, cpu0, db0 = probe_runs(exp), cpu_seconds(proc), backend_cpu(pg.proc.pid)  # type: ignore[union-attr]
        time.sleep(window)
        runs1, cpu1, db1 = probe_runs(exp), cpu_seconds(proc), backend_cpu(pg.proc.pid)  # type: ignore[union-attr]
        cycles = max(1.0, runs1 - runs0)
        latencies, series = scrapes(exp, n)
        return Figures(
            "tradeops timescale", latencies, series, (cpu1 - cpu0) / cycles, (db1 - db0) / cycles
        )
    finally:
        exp.stop()


def bench_peer(root: Path, pg: Postgres, database: str, n: int) -> Figures:
    dsn = f"postgresql://{pg.user}:{pg.password}@{pg.address}/{database}?sslmode=disable"
    peer = PostgresExporter(root, dsn).start()
    try:
        assert peer.proc is not None
        proc = psutil.Process(peer.proc.pid)
        scrapes(peer, 5)  # warm-up: connection opened, queries cached
        cpu0, db0 = cpu_seconds(proc), backend_cpu(pg.proc.pid)  # type: ignore[union-attr]
        latencies, series = scrapes(peer, n)
        cpu1, db1 = cpu_seconds(proc), backend_cpu(pg.proc.pid)  # type: ignore[union-attr]
        return Figures("postgres_exporter", latencies, series, (cpu1 - cpu0) / n, (db1 - db0) / n)
    finally:
        peer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="timescale probe vs postgres_exporter")
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--window", type=float, default=15.0, help="seconds of probe cycles")
    add_json_argument(parser)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tradeops-bench-ts-"))
    pg = Postgres(root).start()
    try:
        make_tables(pg, "bench", args.tables)
        ours = bench_ours(root, pg, "bench", args.tables, args.scrapes, args.window)
        peer = bench_peer(root, pg, "bench", args.scrapes)
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"PostgreSQL with {args.tables} tables; {args.scrapes} scrapes each, loopback")
    header = ("median ms", 10), ("p99 ms", 9), ("series", 8), ("CPU ms/cycle", 14)
    print(f"{'':22}" + "".join(f"{h:>{w}}" for h, w in header) + f"{'DB CPU ms/cycle':>17}")
    for f in (ours, peer):
        print(
            f"{f.name:22}{median(f.latencies) * 1e3:10.2f}{p99(f.latencies) * 1e3:9.2f}"
            f"{f.series:8d}{f.cpu_per_cycle * 1e3:14.2f}{f.db_cpu_per_cycle * 1e3:17.2f}"
        )
    ratio = median(peer.latencies) / median(ours.latencies)
    print(f"/metrics median latency: postgres_exporter / ours = {ratio:.1f}x")
    if ours.cpu_per_cycle > 0:
        cpu = peer.cpu_per_cycle / ours.cpu_per_cycle
        print(f"exporter CPU per cycle: postgres_exporter / ours = {cpu:.2f}x")
    if ours.db_cpu_per_cycle > 0:
        db = peer.db_cpu_per_cycle / ours.db_cpu_per_cycle
        print(f"DB CPU per cycle: postgres_exporter / ours = {db:.2f}x")
    report(args, ours, peer).write(args.json)


def report(args: argparse.Namespace, ours: Figures, peer: Figures) -> Report:
    """The figures, ours beside postgres_exporter's."""
    r = Report(
        "timescale",
        f"PostgreSQL with {args.tables} small tables, each watched for freshness; "
        f"{args.scrapes} sequential scrapes per exporter; our interval 1 s",
        peer=f"postgres_exporter {peer_version('prometheus-postgres-exporter')}".strip(),
    )
    r.add("series", "series", ours.series, peer.series, ratio=False)
    r.add_latencies("/metrics", ours.latencies, peer.latencies)
    r.add("exporter CPU per probe cycle (theirs: a scrape)", "ms",
          1e3 * ours.cpu_per_cycle, 1e3 * peer.cpu_per_cycle)  # fmt: skip
    r.add("PostgreSQL CPU per probe cycle", "ms",
          1e3 * ours.db_cpu_per_cycle, 1e3 * peer.db_cpu_per_cycle)  # fmt: skip
    return r


if __name__ == "__main__":
    main()
