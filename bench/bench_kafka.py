"""Kafka probe at scale: many groups and partitions on a local Tansu broker.

Starts a broker, creates TOPICS x PARTITIONS partitions, produces a few records
to each (one per batch), commits offsets for GROUPS groups on
TOPICS_PER_GROUP topics each, then runs the exporter as a subprocess and
prints broker requests per cycle, cycle time, /metrics latency and RSS.

    .venv/bin/python bench/bench_kafka.py [--groups 200] [--topics 50] ... [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.commit import OffsetCommitRequest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.figures import Report, add_json_argument, median, p99
from stack import Exporter, Tansu

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


def _get(url: str) -> tuple[float, str]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = resp.read().decode()
    return time.perf_counter() - start, body


def _quick(body: str, name: str) -> list[float]:
    """Values of an unlabelled-or-labelled series by prefix, without a full parse."""
    return [float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(name)]


def _values(body: str, name: str) -> list[float]:
    return [
        s.value
        for fam in text_string_to_metric_families(body)
        for s in fam.samples
        if s.name == name
    ]


def _measure(exporter: Exporter, args: argparse.Namespace) -> Report:
    url = f"http://{exporter.address}/metrics"
    durations: list[float] = []
    requests: list[float] = []
    runs_seen = 0.0
    first: list[float] = []
    deadline = time.monotonic() + args.cycles * args.interval * 3 + 120
    while len(durations) < args.cycles and time.monotonic() < deadline:
        _, body = _get(url)
        runs = _quick(body, "tradeops_probe_runs_total{")
        up = _quick(body, "tradeops_up{")
        if runs and runs[0] > runs_seen and up == [1.0]:
            if runs[0] == 1:
                first = _quick(body, "tradeops_probe_duration_seconds{")
            if runs_seen >= 2:  # the first run also discovers every group's topics
                durations += _quick(body, "tradeops_probe_duration_seconds{")
                requests += _quick(body, "tradeops_kafka_requests_per_cycle{")
            runs_seen = runs[0]
        time.sleep(args.interval / 4)
    if not durations:
        raise RuntimeError("no probe cycle completed with the target up")
    latencies = []
    for _ in range(args.scrapes):
        latency, body = _get(url)
        latencies.append(latency)
    series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    pairs = len(_values(body, "tradeops_kafka_consumer_lag_offsets"))
    rss = psutil.Process(exporter.proc.pid).memory_info().rss if exporter.proc else 0
    print(
        f"groups={args.groups} partitions={args.topics * args.partitions} "
        f"pairs={args.groups * args.topics_per_group * args.partitions} "
        f"granularity={args.granularity} (partition lag series: {pairs})"
    )
    print(f"series on /metrics: {series}, body {len(body) / 1e6:.1f} MB")
    print(f"broker requests per cycle: median {statistics.median(requests):.0f}")
    print(
        f"cycle time: median {statistics.median(durations):.3f} s, "
        f"max {max(durations):.3f} s over {len(durations)} cycles"
    )
    if first:
        print(f"first cycle (asks every group about every topic): {first[0]:.3f} s")
    print(
        f"/metrics latency: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {p99(latencies) * 1000:.1f} ms over {args.scrapes}"
    )
    print(f"exporter RSS: {rss / 1e6:.0f} MB")
    report = Report(
        "kafka",
        f"one Tansu broker, {args.groups} groups, {args.topics * args.partitions} partitions, "
        f"{args.groups * args.topics_per_group * args.partitions:,} group-partition pairs "
        f"(granularity {args.granularity}); {len(durations)} cycles at {args.interval:g} s, "
        f"{args.scrapes} scrapes",
    )
    report.add("series on /metrics", "series", series, ratio=False)
    report.add("broker requests per cycle, median", "requests", median(requests), ratio=False)
    report.add("cycle time median", "s", median(durations))
    report.add("cycle time max", "s", max(durations))
    if first:
        report.add("first cycle (every group asked about every topic)", "s", first[0])
    report.add_latencies("/metrics", latencies)
    report.add("exporter RSS", "MB", rss / 1e6)
    return report


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
            config.write_text(
                f"""
kafka:
  - name: bench
    bootstrap_servers: {broker.bootstrap}
    interval: {args.interval}s
    timeout: {args.interval * 0.9}s
    granularity: {args.granularity}
"""
            )
            exporter = Exporter(root / "exporter", config).start()
            report = _measure(exporter, args)
        finally:
            if exporter is not None:
                exporter.stop()
            broker.stop()
    report.write(args.json)


if __name__ == "__main__":
    main()
