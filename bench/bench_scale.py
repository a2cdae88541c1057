"""/metrics at scale: many targets and ~100k series from one exporter process.

Twenty Redis targets (all on one redis-server) each watch 625 streams with two
consumer groups (eight series a stream), about 5,000 series per target and
100,000 in all. Scrapes /metrics every ``--pace`` seconds, plain and gzip in
turn, until there were ``--scrapes`` of each and every target re-rendered its
snapshot at least twice meanwhile (its probe runs on ``--interval``, the
exporter's default 15 s unless told), so the latencies are those of an exporter
whose every target keeps re-rendering. Prints the series count, median and p99
of both, the exporter's CPU per second and RSS, and — for scale — how long
prometheus_client's generate_latest takes to render the same number of series
in-process (what an exporter that renders on scrape pays on every scrape).

    python bench/bench_scale.py [--targets 20] [--streams 625] [--scrapes 200] [--json F]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis as redis_py
from prometheus_client import CollectorRegistry, Gauge, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import Report, add_json_argument, median, p99
from stack import Exporter, Redis, free_port

RERENDERS = 2
"""Snapshot renders every target completes while the scrapes are measured."""


def populate(redis: Redis, streams: int) -> None:
    """``streams`` streams of one entry, each with two consumer groups."""
    client = redis_py.Redis(host="127.0.0.1", port=redis.port)
    pipe = client.pipeline()
    for i in range(streams):
        pipe.xadd(f"s:{i}", {"n": "1"})
        pipe.xgroup_create(f"s:{i}", "g1", id="0")
        pipe.xgroup_create(f"s:{i}", "g2", id="0")
    pipe.execute()
    client.close()


def config(redis: Redis, targets: int, streams: int, interval: float = 15.0) -> str:
    """Every target watches every stream."""
    stream_list = "\n".join(f"      - {{name: s{i}, key: 's:{i}'}}" for i in range(streams))
    return "redis:\n" + "".join(
        f"  - name: cache-{t}\n    address: '{redis.address}'\n    interval: {interval}s\n"
        f"    timeout: {min(10.0, interval * 0.8):.2f}s\n    streams:\n{stream_list}\n"
        for t in range(targets)
    )


def timed_get(url: str, gzip: bool) -> tuple[float, bytes]:
    """Seconds and body of one GET."""
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        body = r.read()
    return time.perf_counter() - start, body


def series_count(body: bytes) -> int:
    """Sample lines in an exposition body."""
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def probe_runs(body: bytes) -> dict[str, float]:
    """Each target's ``tradeops_probe_runs_total``, by its label set."""
    prefix = b"tradeops_probe_runs_total{"
    return {
        line.rsplit(b" ", 1)[0].decode(): float(line.rsplit(b" ", 1)[1])
        for line in body.splitlines()
        if line.startswith(prefix)
    }


def wait_for_targets(url: str, targets: int, timeout: float = 120.0) -> bytes:
    """The body once every target has completed a run."""
    deadline = time.monotonic() + timeout
    while True:
        body = timed_get(url, False)[1]
        if len(probe_runs(body)) >= targets or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def client_library_render_seconds(series: int, repeats: int = 5) -> list[float]:
    """Times for prometheus_client to render ``series`` gauge series."""
    registry = CollectorRegistry()
    g = Gauge("bench_series", "bench", ["target", "stream", "group"], registry=registry)
    for i in range(series):
        g.labels(f"cache-{i % 20}", f"s{i // 20}", f"g{i % 2}").set(i)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate_latest(registry)
        times.append(time.perf_counter() - start)
    return times


@dataclass
class Measured:
    """Scrape latencies while every target re-renders, and what the exporter spent."""

    plain: list[float] = field(default_factory=list)
    zipped: list[float] = field(default_factory=list)
    sizes: tuple[int, int] = (0, 0)
    """Bytes of the last plain and gzip bodies."""
    series: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    """The exporter's CPU seconds over ``seconds``."""
    rss: int = 0
    rerenders: float = 0.0
    """The fewest runs any target completed meanwhile."""


def measure(exporter: Exporter, targets: int, scrapes: int, pace: float) -> Measured:
    """Alternate plain and gzip scrapes until both counts and every target's re-renders
    are reached (at most ten minutes)."""
    assert exporter.proc is not None
    proc = psutil.Process(exporter.proc.pid)
    url = f"http://{exporter.address}/metrics"
    first = probe_runs(wait_for_targets(url, targets))
    m = Measured()
    start, cpu0 = time.monotonic(), sum(proc.cpu_times()[:2])
    body = zipped = b""
    while time.monotonic() - start < 600:
        seconds, body = timed_get(url, False)
        m.plain.append(seconds)
        seconds, zipped = timed_get(url, True)
        m.zipped.append(seconds)
        time.sleep(pace)
        runs = probe_runs(body)
        m.rerenders = min(runs.get(k, 0.0) - v for k, v in first.items())
        if len(m.plain) >= scrapes and m.rerenders >= RERENDERS:
            break
    m.seconds = time.monotonic() - start
    m.cpu = sum(proc.cpu_times()[:2]) - cpu0
    m.rss = proc.memory_info().rss
    m.series, m.sizes = series_count(body), (len(body), len(zipped))
    return m


def report(args: argparse.Namespace, m: Measured, render: list[float]) -> Report:
    """The figures."""
    r = Report(
        "scale",
        f"{args.targets} Redis targets, {m.series:,} series "
        f"({m.sizes[0] / 1e6:.1f} MB plain, {m.sizes[1] / 1e6:.2f} MB gzip), "
        f"{len(m.plain)} scrapes of each while every target re-rendered "
        f">= {m.rerenders:.0f} times (interval {args.interval:g} s)",
        peer="prometheus_client generate_latest (an exporter that renders on scrape)",
    )
    r.add("series on /metrics", "series", m.series, ratio=False)
    r.add_latencies("/metrics plain", m.plain, render)
    r.add_latencies("/metrics gzip", m.zipped)
    r.add("exporter CPU while scraped and re-rendering", "s/s", m.cpu / m.seconds)
    r.add("exporter RSS", "MB", m.rss / 1e6)
    return r


def main() -> None:
    """Run and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", type=int, default=20)
    p.add_argument("--streams", type=int, default=625)
    p.add_argument("--scrapes", type=int, default=200, help="of each, plain and gzip")
    p.add_argument("--interval", type=float, default=15.0, help="each target's probe interval")
    p.add_argument("--pace", type=float, default=0.05, help="seconds between scrape pairs")
    add_json_argument(p)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    redis = Redis(root).start()
    exporter: Exporter | None = None
    try:
        populate(redis, args.streams)
        cfg = root / "c.yml"
        cfg.write_text(config(redis, args.targets, args.streams, args.interval))
        exporter = Exporter(root, cfg, port=free_port())
        exporter.start()
        m = measure(exporter, args.targets, args.scrapes, args.pace)
    finally:
        if exporter is not None:
            exporter.stop()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)
    render = client_library_render_seconds(m.series)
    print(
        f"scale benchmark: {args.targets} targets, {m.series} series, "
        f"{m.sizes[0] / 1e6:.1f} MB plain, {m.sizes[1] / 1e6:.2f} MB gzip; {len(m.plain)} "
        f"scrapes of each over {m.seconds:.1f} s, every target re-rendered >= "
        f"{m.rerenders:.0f} times meanwhile"
    )
    for name, lat in (("plain", m.plain), ("gzip ", m.zipped)):
        print(
            f"/metrics {name}  median {1000 * median(lat):8.1f} ms   p99 {1000 * p99(lat):8.1f} ms"
        )
    print(f"exporter CPU {m.cpu / m.seconds:.2f} s/s meanwhile, RSS {m.rss / 1e6:.0f} MB")
    print(
        f"prometheus_client generate_latest of {m.series} series: {1000 * median(render):.0f} ms "
        f"(median of {len(render)}), {median(render) / median(m.plain):.0f}x our plain scrape"
    )
    report(args, m, render).write(args.json)


if __name__ == "__main__":
    main()
