"""Side-by-side benchmark against Debian's prometheus-redis-exporter, on one redis-server.

Prints, for each exporter: series count, /metrics latency (median and p99 over
interleaved rounds of sequential scrapes), CPU per scrape, and CPU per probe
cycle, with our/their ratios. redis_exporter probes Redis on every scrape, so
its probe cycle and its scrape are the same thing; ours probes on a schedule
and a scrape only copies pre-rendered text, so both figures are shown.

    python bench/bench_redis.py [--scrapes 200] [--rounds 3] [--json F]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import Report, add_json_argument, median, p99, peer_version
from stack import Exporter, Redis, Service, free_port, wait_for_http


class RedisExporter(Service):
    """Debian's prometheus-redis-exporter."""

    name = "redis_exporter"

    def __init__(self, root: Path, redis: Redis) -> None:
        super().__init__(root)
        self.redis = redis

    def command(self) -> list[str]:
        return [
            shutil.which("prometheus-redis-exporter") or "prometheus-redis-exporter",
            f"-redis.addr=redis://{self.redis.address}",
            f"-web.listen-address={self.address}",
        ]

    def wait_ready(self) -> None:
        super().wait_ready()
        wait_for_http(f"http://{self.address}/metrics", 30)


def scrape(address: str) -> tuple[float, bytes]:
    """One /metrics request: (seconds, body)."""
    start = time.perf_counter()
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as resp:
        body = resp.read()
    return time.perf_counter() - start, body


def series_count(body: bytes) -> int:
    """Sample lines in an exposition body."""
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU time of the process so far."""
    t = proc.cpu_times()
    return float(t.user + t.system)


def measure_scrapes(service: Service, n: int) -> tuple[list[float], float]:
    """Latencies of ``n`` sequential scrapes and the CPU they cost per scrape."""
    assert service.proc is not None
    proc = psutil.Process(service.proc.pid)
    before = cpu_seconds(proc)
    latencies = [scrape(service.address)[0] for _ in range(n)]
    return latencies, (cpu_seconds(proc) - before) / n


def populate(redis: Redis) -> None:
    """Some keys, heartbeats and a stream, so both exporters have work to do."""
    import redis as redis_py

    client = redis_py.Redis(host="127.0.0.1", port=redis.port)
    pipe = client.pipeline()
    for i in range(10_000):
        pipe.set(f"key:{i}", "x" * 32)
    for name in ("ingestion", "execution", "risk"):
        pipe.set(f"heartbeat:{name}", f"{time.time():.3f}")
    for i in range(1000):
        pipe.xadd("stream:orders", {"n": str(i)})
    pipe.execute()
    client.xgroup_create("stream:orders", "risk", id="0")
    client.close()


def ours_config(redis: Redis, interval: float) -> str:
    """Our exporter's config: everything the peer reports, plus heartbeats and a stream."""
    return f"""
redis:
  - name: cache
    address: "{redis.address}"
    interval: {interval}s
    timeout: {min(interval / 2, 1.0)}s
    heartbeats:
      - {{name: ingestion, key: "heartbeat:ingestion"}}
      - {{name: execution, key: "heartbeat:execution"}}
      - {{name: risk, key: "heartbeat:risk"}}
    streams:
      - {{name: orders, key: "stream:orders"}}
"""


def probe_runs(exporter: Exporter) -> float:
    """Our exporter's probe runs so far (``tradeops_probe_runs_total``)."""
    body = scrape(exporter.address)[1]
    prefix = b"tradeops_probe_runs_total{"
    return sum(float(ln.rsplit(b" ", 1)[1]) for ln in body.splitlines() if ln.startswith(prefix))


def probe_cycles(exporter: Exporter, seconds: float) -> tuple[float, float]:
    """Our exporter's CPU seconds and probe cycles over ``seconds`` with no other
    scrapes (the two that count the cycles are included: a fraction of a millisecond)."""
    assert exporter.proc is not None
    proc = psutil.Process(exporter.proc.pid)
    runs, before = probe_runs(exporter), cpu_seconds(proc)
    time.sleep(seconds)
    return cpu_seconds(proc) - before, probe_runs(exporter) - runs


def main() -> None:
    """Run the benchmark and print the figures."""
    p = argparse.ArgumentParser()
    p.add_argument("--scrapes", type=int, default=200, help="scrapes per exporter per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--interval", type=float, default=0.5, help="our probe interval")
    p.add_argument("--window", type=float, default=10.0, help="seconds per round of probe cycles")
    add_json_argument(p)
    args = p.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    redis = Redis(root).start()
    services: list[Service] = [redis]
    try:
        populate(redis)
        cfg = root / "ours.yml"
        cfg.write_text(ours_config(redis, args.interval))
        ours = Exporter(root, cfg, port=free_port())
        ours.start()
        theirs = RedisExporter(root, redis)
        theirs.start()
        services += [ours, theirs]
        time.sleep(2 * args.interval)

        lat: dict[str, list[float]] = {"ours": [], "theirs": []}
        cpu: dict[str, list[float]] = {"ours": [], "theirs": []}
        for _ in range(args.rounds):  # interleaved, so machine noise hits both
            for name, svc in (("ours", ours), ("theirs", theirs)):
                latencies, per_scrape = measure_scrapes(svc, args.scrapes)
                lat[name] += latencies
                cpu[name].append(per_scrape)
        # summed over the rounds: the kernel counts CPU time in 10 ms ticks
        spent = [probe_cycles(ours, args.window) for _ in range(args.rounds)]
        cycle = sum(c for c, _ in spent) / max(1.0, sum(n for _, n in spent))
        counts = {
            n: series_count(scrape(s.address)[1]) for n, s in (("ours", ours), ("theirs", theirs))
        }
    finally:
        for service in reversed(services):
            service.stop()
        shutil.rmtree(root, ignore_errors=True)

    med = {n: 1000 * median(v) for n, v in lat.items()}
    tail = {n: 1000 * p99(v) for n, v in lat.items()}
    cpu_ms = {n: 1000 * median(v) for n, v in cpu.items()}
    print(
        f"redis benchmark: {args.rounds} rounds x {args.scrapes} sequential scrapes each, "
        f"interleaved; one redis-server with 10k keys"
    )
    print(f"{'':28}{'tradeops':>12}{'redis_exporter':>16}{'ratio':>9}")
    print(f"{'series':28}{counts['ours']:>12}{counts['theirs']:>16}")
    rows = (
        ("/metrics median (ms)", med["ours"], med["theirs"]),
        ("/metrics p99 (ms)", tail["ours"], tail["theirs"]),
        ("CPU per scrape (ms)", cpu_ms["ours"], cpu_ms["theirs"]),
        ("CPU per probe cycle (ms)", 1000 * cycle, cpu_ms["theirs"]),
    )
    for name, ours_value, theirs_value in rows:
        print(f"{name:28}{ours_value:>12.3f}{theirs_value:>16.3f}{ours_value / theirs_value:>9.2f}")
    print("(redis_exporter's probe cycle is its scrape; ratio < 1 means tradeops is cheaper)")
    report = Report(
        "redis",
        f"one redis-server with 10k keys; {args.rounds} interleaved rounds of "
        f"{args.scrapes} sequential scrapes per exporter; our interval {args.interval:g} s",
        peer=f"redis_exporter {peer_version('prometheus-redis-exporter')}".strip(),
    )
    report.add("series", "series", counts["ours"], counts["theirs"], ratio=False)
    report.add_latencies("/metrics", lat["ours"], lat["theirs"])
    report.add("CPU per scrape", "ms", cpu_ms["ours"], cpu_ms["theirs"])
    report.add("CPU per probe cycle (theirs: a scrape)", "ms", 1000 * cycle, cpu_ms["theirs"])
    report.write(args.json)


if __name__ == "__main__":
    main()
