"""Kafka probe at scale: many groups and partitions on a local Tansu broker.

Starts a broker, creates TOPICS x PARTITIONS partitions, produces a few records
to each (one per batch), commits offsets for GROUPS groups on
TOPICS_PER_GROUP topics each, then runs the exporter as a subprocess and
prints broker requests per cycle, cycle time, the exporter's RSS (and per
group-partition), and /metrics latency beside a bare copy of the same body: a
minimal server on loopback that sends the captured bytes with a Content-Length,
fetched the same way and as many times.

    .venv/bin/python bench/bench_kafka.py [--groups 200] [--topics 50] ... [--json F]

The exporter runs from the current directory's ``exporter`` package, so the same
script measures another checkout: ``cd OTHER && python /path/to/bench_kafka.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.commit import OffsetCommitRequest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.figures import Report, add_json_argument, median, p99
from stack import Exporter, Service, Tansu

TIMEOUT_MS = 30_000


async def _setup(bootstrap: str, args: argparse.Namespace) -> list[str]:
    topics = [f"bench-{i:03d}" for i in range(args.topics)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, args.partitions, 1) for t in topics])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    await producer.start()
    try:
        for _ in range(args.records):  # one record per partition per round: one per batch
            futures = [
                await producer.send(t, b"x", partition=p)
                for t in topics
                for p in range(args.partitions)
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    await _commit_all(bootstrap, topics, args)
    return topics


async def _commit_all(bootstrap: str, topics: list[str], args: argparse.Namespace) -> None:
    """Commit offsets for every group with raw OffsetCommit requests (no group join)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    await client.bootstrap()
    node = client.get_random_node()
    limit = asyncio.Semaphore(10)

    async def one(g: int) -> None:
        mine = [topics[(g + k) % len(topics)] for k in range(args.topics_per_group)]
        offset = g % (args.records + 1)
        payload = [(t, [(p, offset, "") for p in range(args.partitions)]) for t in mine]
        request = OffsetCommitRequest(f"bench-group-{g:04d}", -1, "", -1, payload)
        async with limit:
            await client.send(node, request)

    try:
        await asyncio.gather(*(one(g) for g in range(args.groups)))
    finally:
        await client.close()


def _get(url: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = resp.read()
    return time.perf_counter() - start, body


def _quick(body: bytes, name: str) -> list[float]:
    """Values of the series whose line starts with ``name``, without a full parse."""
    prefix = name.encode()
    return [float(line.rsplit(b" ", 1)[1]) for line in body.splitlines() if line.startswith(prefix)]


BARE_SERVER = """
import asyncio, sys
body = open(sys.argv[1], "rb").read()
head = (
    "HTTP/1.1 200 OK\\r\\nContent-Type: text/plain; version=0.0.4; charset=utf-8\\r\\n"
    f"Content-Length: {len(body)}\\r\\nConnection: close\\r\\n\\r\\n"
).encode()
async def answer(reader, writer):
    await reader.readuntil(b"\\r\\n\\r\\n")
    writer.write(head)
    writer.write(body)
    await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(answer, "127.0.0.1", int(sys.argv[2]))
    await server.serve_forever()
asyncio.run(main())
"""
"""A minimal HTTP server: every request is answered with the file's bytes."""


class BareCopy(Service):
    """A minimal server on loopback, in its own process like the exporter, that answers
    every request with ``body`` and its Content-Length: what serving the bytes costs,
    with nothing else."""

    name = "bare-copy"

    def __init__(self, root: Path, body: bytes) -> None:
        super().__init__(root)
        self.body_path = self.dir / "body"
        self.body_path.write_bytes(body)

    def command(self) -> list[str]:
        return [sys.executable, "-c", BARE_SERVER, str(self.body_path), str(self.port)]


@dataclass(slots=True)
class Cycles:
    """What the exporter's own series said about the probe cycles seen."""

    durations: list[float]
    requests: list[float]
    first: float | None
    rss: list[int]
    """The exporter's RSS at each poll after the second cycle."""


def _cycles(url: str, pid: int, args: argparse.Namespace) -> Cycles:
    """Poll /metrics until ``args.cycles`` successful cycles after the second were seen
    (the first cycles also discover every group's topics), noting the exporter's RSS."""
    out = Cycles([], [], None, [])
    process = psutil.Process(pid)
    runs_seen = 0.0
    deadline = time.monotonic() + args.cycles * args.interval * 3 + 120
    while len(out.durations) < args.cycles and time.monotonic() < deadline:
        _, body = _get(url)
        runs = _quick(body, "tradeops_probe_runs_total{")
        up = _quick(body, "tradeops_up{")
        if runs and runs[0] > runs_seen and up == [1.0]:
            duration = _quick(body, "tradeops_probe_duration_seconds{")
            if out.first is None:
                out.first = duration[0]
            if runs_seen >= 2:
                out.durations += duration
                out.requests += _quick(body, "tradeops_kafka_requests_per_cycle{")
            runs_seen = runs[0]
        if runs_seen > 2:
            out.rss.append(process.memory_info().rss)
        time.sleep(args.interval / 4)
    if not out.durations:
        raise RuntimeError("no probe cycle completed with the target up")
    return out


def _scrapes(url: str, n: int) -> tuple[list[float], bytes]:
    latencies, body = [], b""
    for _ in range(n):
        latency, body = _get(url)
        latencies.append(latency)
    return latencies, body


def _peak_rss(pid: int) -> int:
    """The peak RSS of a process since it started (Linux), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass(slots=True)
class Figures:
    """One run's figures."""

    cycles: Cycles
    rss: int
    peak: int
    latencies: list[float]
    bare: list[float]
    series: int
    body: int
    lag_series: int


def _measure(exporter: Exporter, root: Path, args: argparse.Namespace) -> Figures:
    url = f"http://{exporter.address}/metrics"
    assert exporter.proc is not None
    cycles = _cycles(url, exporter.proc.pid, args)
    latencies, body = _scrapes(url, args.scrapes)
    if _quick(body, "tradeops_up{") != [1.0]:
        print("warning: the target was down during the scrapes (cycles overran the timeout?)")
    rss, peak = int(statistics.median(cycles.rss)), _peak_rss(exporter.proc.pid)
    server = BareCopy(root, body).start()
    try:
        bare, copy = _scrapes(f"http://{server.address}/metrics", args.scrapes)
    finally:
        server.stop()
    assert copy == body
    text = body.decode()
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    lag = sum(
        len(f.samples)
        for f in text_string_to_metric_families(text)
        if f.name == "tradeops_kafka_consumer_lag_offsets"
    )
    return Figures(cycles, rss, peak, latencies, bare, series, len(body), lag)


def _print(f: Figures, args: argparse.Namespace) -> None:
    pairs = args.groups * args.topics_per_group * args.partitions
    c = f.cycles
    print(
        f"groups={args.groups} partitions={args.topics * args.partitions} pairs={pairs} "
        f"granularity={args.granularity} (partition lag series: {f.lag_series})"
    )
    print(f"series on /metrics: {f.series}, body {f.body / 1e6:.1f} MB")
    print(f"broker requests per cycle: median {statistics.median(c.requests):.0f}")
    print(
        f"cycle time: median {statistics.median(c.durations):.3f} s, "
        f"max {max(c.durations):.3f} s over {len(c.durations)} cycles"
    )
    if c.first is not None:
        print(f"first cycle (asks every group about every topic): {c.first:.3f} s")
    print(
        f"exporter RSS: median {f.rss / 1e6:.0f} MB over the cycles (peak {f.peak / 1e6:.0f} MB"
        f" since start), {f.rss / pairs:.0f} bytes per group-partition"
    )
    ours, bare = median(f.latencies), median(f.bare)
    print(
        f"/metrics latency: median {ours * 1000:.1f} ms, p99 {p99(f.latencies) * 1000:.1f} ms; "
        f"bare copy of the same body: median {bare * 1000:.1f} ms, "
        f"p99 {p99(f.bare) * 1000:.1f} ms; ratio {ours / bare:.2f} (over {args.scrapes} each)"
    )


def _report(f: Figures, args: argparse.Namespace) -> Report:
    pairs = args.groups * args.topics_per_group * args.partitions
    report = Report(
        "kafka",
        f"one Tansu broker, {args.groups} groups, {args.topics * args.partitions} partitions, "
        f"{pairs:,} group-partition pairs (granularity {args.granularity}); "
        f"{len(f.cycles.durations)} cycles at {args.interval:g} s, {args.scrapes} scrapes; "
        "peer: a bare copy of the same body over loopback",
        peer="bare copy",
    )
    report.add("series on /metrics", "series", f.series, ratio=False)
    report.add(
        "broker requests per cycle, median", "requests", median(f.cycles.requests), ratio=False
    )
    report.add("cycle time median", "s", median(f.cycles.durations))
    report.add("cycle time max", "s", max(f.cycles.durations))
    if f.cycles.first is not None:
        report.add("first cycle (every group asked about every topic)", "s", f.cycles.first)
    report.add_latencies("/metrics", f.latencies, f.bare)
    report.add("exporter RSS, median over the cycles", "MB", f.rss / 1e6)
    report.add("exporter RSS, peak since start", "MB", f.peak / 1e6)
    report.add("exporter RSS per group-partition", "bytes", f.rss / pairs)
    return report


def _config(bootstrap: str, args: argparse.Namespace) -> str:
    return f"""
kafka:
  - name: bench
    bootstrap_servers: {bootstrap}
    interval: {args.interval}s
    timeout: {args.interval * 0.9}s
    granularity: {args.granularity}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--partitions", type=int, default=24, help="per topic")
    parser.add_argument("--topics-per-group", type=int, default=5)
    parser.add_argument("--records", type=int, default=3, help="per partition")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--cycles", type=int, default=8)
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--granularity", choices=("partition", "topic"), default="partition")
    add_json_argument(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        broker = Tansu(root / "tansu").start()
        exporter: Exporter | None = None
        try:
            t0 = time.perf_counter()
            asyncio.run(_setup(broker.bootstrap, args))
            print(f"setup: {time.perf_counter() - t0:.1f} s")
            config = root / "config.yml"
            config.write_text(_config(broker.bootstrap, args))
            exporter = Exporter(root / "exporter", config).start()
            figures = _measure(exporter, root, args)
        finally:
            if exporter is not None:
                exporter.stop()
            broker.stop()
    _print(figures, args)
    _report(figures, args).write(args.json)


if __name__ == "__main__":
    main()
