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

The floor to compare /metrics with is a bare copy: the last bodies served (plain
and gzip) sent again, the same number of times and fetched the same way, by a
minimal asyncio server in a process of its own that hands each response's bytes
(with a Content-Length) straight to the socket. The ratios of the medians say what
the exporter adds to moving the bytes.

    python bench/bench_scale.py [--targets 20] [--streams 625] [--scrapes 200] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis as redis_py
from prometheus_client import CollectorRegistry, Gauge, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.figures import Report, add_json_argument, median, p99
from stack import Exporter, Redis, free_port, wait_for_port

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


def config(
    redis: Redis, targets: int, streams: int, interval: float = 15.0, budget: str | None = None
) -> str:
    """Every target watches every stream."""
    stream_list = "\n".join(f"      - {{name: s{i}, key: 's:{i}'}}" for i in range(streams))
    extra = f"    response_budget: {budget}\n" if budget else ""
    return "redis:\n" + "".join(
        f"  - name: cache-{t}\n    address: '{redis.address}'\n    interval: {interval}s\n"
        f"    timeout: {min(10.0, interval * 0.8):.2f}s\n{extra}    streams:\n{stream_list}\n"
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
    bodies: tuple[bytes, bytes] = (b"", b"")
    """The last plain and gzip bodies."""


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
    m.bodies = (body, zipped)
    return m


def _serve_bare(responses: dict[bytes, bytes], port: int) -> None:
    """Answer every request for a path of ``responses`` with its bytes (status line,
    headers and body), handed to the socket as they are (``loop.sock_sendall``: no
    copy, no buffering), until killed."""

    async def answer(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        with conn:
            request = b""
            while True:
                data = await loop.sock_recv(conn, 65536)
                if not data:
                    return
                request += data
                while b"\r\n\r\n" in request:
                    head, _, request = request.partition(b"\r\n\r\n")
                    await loop.sock_sendall(conn, responses[head.split(b" ", 2)[1]])

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with socket.create_server(("127.0.0.1", port)) as listener:
            listener.setblocking(False)
            tasks = set()
            while True:
                conn, _ = await loop.sock_accept(listener)
                conn.setblocking(False)
                task = asyncio.create_task(answer(loop, conn))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    asyncio.run(main())


@contextmanager
def bare_server(plain: bytes, zipped: bytes) -> Iterator[str]:
    """A minimal server of ``/plain`` and ``/gzip`` in a process of its own: its
    address."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
    responses = {
        b"/plain": head + b"Content-Length: %d\r\n\r\n" % len(plain) + plain,
        b"/gzip": head
        + b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(zipped)
        + zipped,
    }
    port = free_port()
    proc = multiprocessing.get_context("fork").Process(target=_serve_bare, args=(responses, port))
    proc.start()
    try:
        wait_for_port(port, 30)
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.join()


Bare = tuple[list[float], list[float]]
"""Latencies of the bare copy: plain, gzip."""


def measure_bare(m: Measured, pace: float) -> Bare:
    """The bare copy of the last bodies: as many scrapes of each, fetched the same way."""
    plain: list[float] = []
    zipped: list[float] = []
    with bare_server(*m.bodies) as address:
        for _ in range(len(m.plain)):
            plain.append(timed_get(f"http://{address}/plain", False)[0])
            zipped.append(timed_get(f"http://{address}/gzip", True)[0])
            time.sleep(pace)
    return plain, zipped


def report(args: argparse.Namespace, m: Measured, render: list[float], bare: Bare) -> Report:
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
    r.add_latencies("bare copy of the plain body", bare[0])
    r.add_latencies("bare copy of the gzip body", bare[1])
    r.add("/metrics plain median / bare copy median", "x", median(m.plain) / median(bare[0]))
    r.add("/metrics gzip median / bare copy median", "x", median(m.zipped) / median(bare[1]))
    return r


def run(args: argparse.Namespace) -> Measured:
    """Start Redis and the exporter, measure, stop them."""
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    redis = Redis(root).start()
    exporter: Exporter | None = None
    try:
        populate(redis, args.streams)
        cfg = root / "c.yml"
        text = config(redis, args.targets, args.streams, args.interval, args.response_budget)
        cfg.write_text(text)
        exporter = Exporter(root, cfg, port=free_port())
        exporter.start()
        return measure(exporter, args.targets, args.scrapes, args.pace)
    finally:
        if exporter is not None:
            exporter.stop()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


def show(args: argparse.Namespace, m: Measured, render: list[float], bare: Bare) -> None:
    """Print the figures for a person."""
    print(
        f"scale benchmark: {args.targets} targets, {m.series} series, "
        f"{m.sizes[0] / 1e6:.1f} MB plain, {m.sizes[1] / 1e6:.2f} MB gzip; {len(m.plain)} "
        f"scrapes of each over {m.seconds:.1f} s, every target re-rendered >= "
        f"{m.rerenders:.0f} times meanwhile"
    )
    for name, lat, floor in (("plain", m.plain, bare[0]), ("gzip ", m.zipped, bare[1])):
        print(
            f"/metrics {name}  median {1000 * median(lat):8.1f} ms   p99 {1000 * p99(lat):8.1f} ms"
            f"   bare copy median {1000 * median(floor):8.1f} ms   p99 {1000 * p99(floor):8.1f} ms"
            f"   ratio of medians {median(lat) / median(floor):.2f}x"
        )
    print(f"exporter CPU {m.cpu / m.seconds:.2f} s/s meanwhile, RSS {m.rss / 1e6:.0f} MB")
    print(
        f"prometheus_client generate_latest of {m.series} series: {1000 * median(render):.0f} ms "
        f"(median of {len(render)}), {median(render) / median(m.plain):.0f}x our plain scrape"
    )


def main() -> None:
    """Run and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", type=int, default=20)
    p.add_argument("--streams", type=int, default=625)
    p.add_argument("--scrapes", type=int, default=200, help="of each, plain and gzip")
    p.add_argument("--interval", type=float, default=15.0, help="each target's probe interval")
    p.add_argument("--pace", type=float, default=0.05, help="seconds between scrape pairs")
    p.add_argument(
        "--response-budget", help="each target's response_budget (for many streams: 256MiB)"
    )
    add_json_argument(p)
    args = p.parse_args()
    m = run(args)
    bare = measure_bare(m, args.pace)
    render = client_library_render_seconds(m.series)
    show(args, m, render, bare)
    report(args, m, render, bare).write(args.json)


if __name__ == "__main__":
    main()
