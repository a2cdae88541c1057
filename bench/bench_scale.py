"""/metrics at scale: many targets and ~100k series from one exporter process.

Twenty Redis targets (all on one redis-server) each watch 500 streams with two
consumer groups, about 5,000 series per target. Prints the series count, the
/metrics latency (median, p99) for plain and gzip scrapes while every target
keeps probing, the exporter's RSS, and — for scale — how long
prometheus_client's generate_latest takes to render the same number of series
in-process (what an exporter that renders on scrape pays on every scrape).

    python bench/bench_scale.py [--targets 20] [--streams 500]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import redis as redis_py
from prometheus_client import CollectorRegistry, Gauge, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stack import Exporter, Redis, free_port


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


def config(redis: Redis, targets: int, streams: int) -> str:
    """Every target watches every stream."""
    stream_list = "\n".join(f"      - {{name: s{i}, key: 's:{i}'}}" for i in range(streams))
    return "redis:\n" + "".join(
        f"  - name: cache-{t}\n    address: '{redis.address}'\n    interval: 5s\n"
        f"    timeout: 4s\n    streams:\n{stream_list}\n"
        for t in range(targets)
    )


def timed_get(url: str, gzip: bool) -> tuple[float, int]:
    """Seconds and bytes of one GET."""
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        body = r.read()
    return time.perf_counter() - start, len(body)


def client_library_render_seconds(series: int) -> float:
    """Median time for prometheus_client to render ``series`` gauge series."""
    registry = CollectorRegistry()
    g = Gauge("bench_series", "bench", ["target", "stream", "group"], registry=registry)
    for i in range(series):
        g.labels(f"cache-{i % 20}", f"s{i // 20}", f"g{i % 2}").set(i)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        generate_latest(registry)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Run and print the figures."""
    p = argparse.ArgumentParser()
    p.add_argument("--targets", type=int, default=20)
    p.add_argument("--streams", type=int, default=500)
    p.add_argument("--scrapes", type=int, default=30)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    redis = Redis(root).start()
    exporter: Exporter | None = None
    try:
        populate(redis, args.streams)
        cfg = root / "c.yml"
        cfg.write_text(config(redis, args.targets, args.streams))
        exporter = Exporter(root, cfg, port=free_port())
        exporter.start()
        url = f"http://{exporter.address}/metrics"
        deadline = time.monotonic() + 60
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read()
        while body.count(b"tradeops_up{") < args.targets and time.monotonic() < deadline:
            time.sleep(0.5)
            with urllib.request.urlopen(url, timeout=30) as r:
                body = r.read()
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        plain = [timed_get(url, False) for _ in range(args.scrapes)]
        zipped = [timed_get(url, True) for _ in range(args.scrapes)]
        assert exporter.proc is not None
        rss = psutil.Process(exporter.proc.pid).memory_info().rss
    finally:
        if exporter is not None:
            exporter.stop()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)
    render = client_library_render_seconds(series)

    def q(values: list[float], pct: int) -> float:
        return 1000 * statistics.quantiles(values, n=100)[pct - 1]

    lat_plain = [t for t, _ in plain]
    lat_zip = [t for t, _ in zipped]
    print(
        f"scale benchmark: {args.targets} targets, {series} series, "
        f"{plain[0][1] / 1e6:.1f} MB plain, {zipped[0][1] / 1e6:.2f} MB gzip"
    )
    print(
        f"/metrics plain  median {1000 * statistics.median(lat_plain):8.1f} ms   "
        f"p99 {q(lat_plain, 99):8.1f} ms"
    )
    print(
        f"/metrics gzip   median {1000 * statistics.median(lat_zip):8.1f} ms   "
        f"p99 {q(lat_zip, 99):8.1f} ms"
    )
    print(f"exporter RSS {rss / 1e6:.0f} MB")
    print(
        f"prometheus_client generate_latest of {series} series: {1000 * render:.0f} ms "
        f"(median of 5), {render / statistics.median(lat_plain):.0f}x our plain scrape"
    )


if __name__ == "__main__":
    main()
