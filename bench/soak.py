"""Soak: the exporter at scale for N minutes, every target probing and /metrics
scraped all along; fails when memory grows or file descriptors leak (``make soak``).

The backbone is real, from the stack package, with the demo's traffic: Redis
(heartbeats, an order stream, the canary), PostgreSQL (a tick table written
every 0.5 s), a Tansu broker (a producer and consumer groups that keep up, lag
and stop), a QuickFIX acceptor (an active monitoring session, and the passive
reader of its files while a simulated initiator trades), the event-bus
stand-in (its canary through Redis), a directory of backups (one more every
30 s) and a drill-records directory. On top, for scale, ``--scale-targets``
Redis targets on a second redis-server each watch ``--streams`` streams with
two consumer groups (eight series a stream: 20 x 625 is 100,000 series).

After ``--warmup`` seconds, the exporter's RSS, open fds and threads are
sampled every ``--sample-every`` seconds while /metrics is scraped every
``--scrape-every`` seconds (plain and gzip in turn). The baseline is the median
of the first samples after the warm-up, the end the median of the last ones
(``WINDOW_SECONDS`` of samples each, at least three): a one-off allocation in
flight does not decide. Exit status 1 when:

- RSS grew by more than ``--max-rss-growth`` (5 %) from the baseline to the end;
- open fds are not flat: the end is more than ``FD_SLACK`` above the baseline;
- a scrape failed, the exporter exited, or a target made no probe run after the
  warm-up (a stuck loop).

Prints a summary of the samples (and with ``--json PATH`` writes them all).

    SOAK_MINUTES=30 python bench/soak.py [--minutes M] [--scale-targets 20] [--streams 625]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_scale import populate
from bench.figures import median, p99
from stack import Exporter, Postgres, Redis, Service, Tansu, free_port, sim_fix
from stack.backups import write_manifest
from stack.demo_targets import eventbus_target, fix_targets, redis_target
from stack.fix import FixAcceptor
from stack.sim_eventbus import EventBusSim
from stack.sim_kafka import KafkaSimulator
from stack.sim_redis import RedisTraffic
from stack.sim_timescale import TickSimulator
from stack.sim_timescale import exporter_config as timescale_target

PG_PASSWORD_ENV = "TRADEOPS_SOAK_PG_PASSWORD"
WINDOW_SECONDS = 60.0
"""Length of the baseline and end windows (at least three samples each)."""
FD_SLACK = 2
"""Open fds the end may exceed the baseline by: connections caught mid-run."""
ServiceT = TypeVar("ServiceT", bound=Service)
BACKUP_EVERY = 30.0
BACKUPS_KEPT = 20


@dataclass(frozen=True, slots=True)
class Sample:
    """The exporter process at one moment."""

    t: float
    """Seconds since the warm-up ended."""
    rss: int
    fds: int
    threads: int
    cpu: float
    """User + system CPU seconds so far."""


@dataclass
class Scrapes:
    """What the continuous scraping saw."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


# -- the stack -----------------------------------------------------------------


class Stack:
    """The backbone, its traffic and the scale Redis; stops what it started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.services: list[Service] = []
        self.stoppers: list[Callable[[], Awaitable[None]]] = []
        self.targets: dict[str, list[dict[str, Any]]] = {}

    def _start(self, service: ServiceT) -> ServiceT:
        service.start()
        self.services.append(service)
        return service

    def _background(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

        self.stoppers.append(stop)

    async def start(self, args: argparse.Namespace) -> None:
        """Start every service and its traffic; fill ``targets``."""
        redis = self._start(Redis(self.root))
        scale = self._start(Redis(self.root / "scale"))
        postgres = self._start(Postgres(self.root))
        tansu = self._start(Tansu(self.root))
        venue = self._start(FixAcceptor(self.root))
        await asyncio.to_thread(populate, scale, args.streams)

        ticks = TickSimulator(postgres.dsn(), interval=0.5)
        await ticks.start()
        self.stoppers.append(ticks.stop)
        kafka = KafkaSimulator(tansu.bootstrap)
        await kafka.start()
        self.stoppers.append(kafka.stop)
        traffic = RedisTraffic(redis.address)
        traffic.start()
        self.stoppers.append(traffic.stop)
        self._background(fix_traffic(venue.address), "soak-fix-traffic")
        bus = await EventBusSim("127.0.0.1", error_every=2000).start()
        self.stoppers.append(bus.stop)
        dumps, drills = self.root / "backups", self.root / "drills"
        dumps.mkdir()
        drills.mkdir()
        await asyncio.to_thread(new_backup, dumps)
        self._background(backups(dumps), "soak-backups")

        os.environ[PG_PASSWORD_ENV] = postgres.password
        fix_active, fix_passive = fix_targets(venue)
        self.targets = {
            "fix": [fix_active],
            "fix_store": [fix_passive],
            "kafka": [{"name": "marketdata", "bootstrap_servers": tansu.bootstrap}],
            "redis": [redis_target(redis), *scale_targets(scale, args)],
            "timescale": [timescale_target(postgres.address, "postgres", PG_PASSWORD_ENV)],
            "backups": [{"name": "pg-dumps", "source": {"type": "directory", "path": str(dumps)}}],
            "eventbus": [eventbus_target(bus, redis)],
            "drills": [{"name": "shift-start", "path": str(drills)}],
        }

    async def stop(self) -> None:
        """Stop the traffic and every service, newest first."""
        for stop in reversed(self.stoppers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stop(), 10)
        for service in reversed(self.services):
            service.stop()


def scale_targets(redis: Redis, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The synthetic series: every scale target watches every stream."""
    streams = [{"name": f"s{i}", "key": f"s:{i}"} for i in range(args.streams)]
    return [
        {
            "name": f"scale-{t}",
            "address": redis.address,
            "interval": f"{args.scale_interval}s",
            "timeout": f"{min(10.0, args.scale_interval * 0.8)}s",
            "streams": streams,
        }
        for t in range(args.scale_targets)
    ]


async def fix_traffic(address: str) -> None:
    """The simulated initiator trading with the acceptor; reconnects if dropped."""
    while True:
        with contextlib.suppress(Exception):  # a dropped session: log on again
            await sim_fix.run(address, order_interval=0.5)
        await asyncio.sleep(1.0)


def new_backup(directory: Path) -> None:
    """One more small dump with its manifest; the oldest beyond ``BACKUPS_KEPT`` go."""
    now = time.time()
    dump = directory / f"soak-{now:.0f}.dump"
    dump.write_bytes(os.urandom(64 * 1024))
    write_manifest(dump, now - 5, now)
    for old in sorted(directory.glob("*.dump"))[:-BACKUPS_KEPT]:
        old.with_name(old.name + ".manifest.json").unlink(missing_ok=True)
        old.unlink(missing_ok=True)


async def backups(directory: Path) -> None:
    """A new backup every ``BACKUP_EVERY`` seconds."""
    while True:
        await asyncio.sleep(BACKUP_EVERY)
        await asyncio.to_thread(new_backup, directory)


def exporter_config(targets: dict[str, list[dict[str, Any]]], interval: float) -> str:
    """The soak's exporter configuration: real targets on ``interval``."""
    timeout = min(3.0, interval * 0.6)
    config = {"global": {"interval": f"{interval}s", "timeout": f"{timeout}s"}, **targets}
    return yaml.safe_dump(config, sort_keys=False)


# -- measuring -------------------------------------------------------------------


def series(body: bytes) -> int:
    """Sample lines in an exposition body."""
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def by_target(body: bytes, family: str) -> dict[str, float]:
    """A framework family's values by ``kind/target`` (and reason, when it has one)."""
    out: dict[str, float] = {}
    prefix = f"{family}{{".encode()
    for line in body.splitlines():
        if line.startswith(prefix):
            labels, value = line.decode().rsplit(" ", 1)
            pairs = dict(p.split("=", 1) for p in labels[len(family) + 1 : -1].split(","))
            key = "/".join(v.strip('"') for v in pairs.values())
            out[key] = float(value)
    return out


class Scraper:
    """Scrapes /metrics from a thread of its own over one keep-alive connection, so
    the figures are the exporter's, not this process' event loop's (the simulators
    run there). A gzip body is timed as it arrives, not decompressed."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)
        self.conn: http.client.HTTPConnection | None = None

    def get(self, gzip: bool = False) -> tuple[float, bytes]:
        """One GET of /metrics: (seconds, body); raises on anything but 200. A kept-alive
        connection the server closed while idle is replaced once, as HTTP clients do."""
        reused = self.conn is not None
        try:
            return self._get(gzip)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            return self._get(gzip)

    def _get(self, gzip: bool) -> tuple[float, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
        start = time.perf_counter()
        try:
            self.conn.request("GET", "/metrics", headers=headers)
            resp = self.conn.getresponse()
            body = resp.read()
        except Exception:
            self.close()
            raise
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        return time.perf_counter() - start, body

    def close(self) -> None:
        """Drop the connection (the next GET opens another)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def every(self, seconds: float, out: Scrapes, stop: threading.Event) -> None:
        """Scrape every ``seconds``, plain and gzip in turn, until ``stop`` is set."""
        next_at, n = time.monotonic(), 0
        while not stop.is_set():
            try:
                out.latencies.append(self.get(gzip=n % 2 == 1)[0])
            except Exception as exc:
                out.failures.append(f"{type(exc).__name__}: {exc}")
            n += 1
            next_at += seconds
            stop.wait(max(0.0, next_at - time.monotonic()))


async def wait_until_up(scraper: Scraper, targets: int, patience: float = 300.0) -> bytes:
    """The body once every target has had a successful run (``patience`` seconds at
    most: then the body as it is)."""
    deadline = time.monotonic() + patience
    while True:
        body = (await asyncio.to_thread(scraper.get))[1]
        done = by_target(body, "tradeops_probe_last_success_timestamp_seconds")
        if len(done) >= targets or time.monotonic() > deadline:
            return body
        await asyncio.sleep(1)


def sample(proc: psutil.Process, t: float) -> Sample:
    """The process now."""
    with proc.oneshot():
        cpu = proc.cpu_times()
        return Sample(t, proc.memory_info().rss, proc.num_fds(), proc.num_threads(),
                      cpu.user + cpu.system)  # fmt: skip


async def sample_until(
    proc: psutil.Process, seconds: float, every: float, samples: list[Sample]
) -> None:
    """Sample every ``every`` seconds for ``seconds``, with a progress line a minute."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    last_line = start
    while (t := loop.time() - start) <= seconds:
        if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
            raise RuntimeError("the exporter exited")
        samples.append(sample(proc, t))
        if loop.time() - last_line >= 60:
            last_line = loop.time()
            s = samples[-1]
            print(f"  {t / 60:5.1f} min: RSS {s.rss / 1e6:.1f} MB, fds {s.fds}, "
                  f"threads {s.threads}", flush=True)  # fmt: skip
        await asyncio.sleep(every - (loop.time() - start) % every)


# -- verdict -----------------------------------------------------------------------


@dataclass
class Verdict:
    """The figures and what failed."""

    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)


def window(samples: list[Sample], every: float) -> int:
    """Samples in a baseline or end window: ``WINDOW_SECONDS`` worth, at least three,
    at most a third of them."""
    return max(3, min(len(samples) // 3, round(WINDOW_SECONDS / every)))


def slope_per_hour(samples: list[Sample], value: Callable[[Sample], float]) -> float:
    """Least-squares slope of ``value`` over time, per hour."""
    if len(samples) < 2:
        return 0.0
    fit = statistics.linear_regression([s.t for s in samples], [value(s) for s in samples])
    return fit.slope * 3600


def judge(samples: list[Sample], args: argparse.Namespace) -> Verdict:
    """RSS growth and fd flatness over the samples after the warm-up."""
    v = Verdict()
    if len(samples) < 6:
        v.failures.append(f"only {len(samples)} samples: run longer or sample more often")
        return v
    k = window(samples, args.sample_every)
    first, last = samples[:k], samples[-k:]
    rss0, rss1 = median([s.rss for s in first]), median([s.rss for s in last])
    fds0, fds1 = median([s.fds for s in first]), median([s.fds for s in last])
    growth = (rss1 - rss0) / rss0
    span = samples[-1].t - samples[0].t
    cpu = (samples[-1].cpu - samples[0].cpu) / span if span else 0.0
    v.figures = {"rss_baseline_mb": rss0 / 1e6, "rss_end_mb": rss1 / 1e6,
                 "rss_growth": growth, "fds_baseline": fds0, "fds_end": fds1,
                 "exporter_cpu": cpu}  # fmt: skip
    v.lines += [
        f"samples: {len(samples)} over {span / 60:.1f} min, every {args.sample_every:g} s; "
        f"baseline = median of the first {k}, end = median of the last {k}",
        f"{'':10}{'baseline':>10}{'end':>10}{'min':>10}{'max':>10}{'change':>12}{'per hour':>11}",
        f"{'RSS MB':10}{rss0 / 1e6:>10.1f}{rss1 / 1e6:>10.1f}"
        f"{min(s.rss for s in samples) / 1e6:>10.1f}{max(s.rss for s in samples) / 1e6:>10.1f}"
        f"{100 * growth:>+11.1f}%{slope_per_hour(samples, lambda s: s.rss) / 1e6:>+11.1f}",
        f"{'fds':10}{fds0:>10.0f}{fds1:>10.0f}{min(s.fds for s in samples):>10}"
        f"{max(s.fds for s in samples):>10}{fds1 - fds0:>+12.0f}"
        f"{slope_per_hour(samples, lambda s: s.fds):>+11.1f}",
        f"{'threads':10}{median([s.threads for s in first]):>10.0f}"
        f"{median([s.threads for s in last]):>10.0f}{min(s.threads for s in samples):>10}"
        f"{max(s.threads for s in samples):>10}",
        f"exporter CPU: {cpu:.2f} cores on average",
    ]
    if growth > args.max_rss_growth:
        v.failures.append(f"RSS grew {100 * growth:.1f} % (limit {100 * args.max_rss_growth:g} %)")
    if fds1 - fds0 > FD_SLACK:
        v.failures.append(f"open fds grew from {fds0:.0f} to {fds1:.0f} (slack {FD_SLACK})")
    return v


def judge_scrapes(scrapes: Scrapes, v: Verdict) -> None:
    """Scrape latencies; any failed scrape fails the soak."""
    lat = scrapes.latencies
    if lat:
        v.lines.append(
            f"/metrics: {len(lat)} scrapes, median {1000 * median(lat):.1f} ms, "
            f"p99 {1000 * p99(lat):.1f} ms, max {1000 * max(lat):.1f} ms; "
            f"{len(scrapes.failures)} failed"
        )
        v.figures |= {"scrape_median_ms": 1000 * median(lat), "scrape_p99_ms": 1000 * p99(lat)}
    if scrapes.failures:
        v.failures.append(f"{len(scrapes.failures)} scrapes failed, first: {scrapes.failures[0]}")


def judge_targets(before: bytes, after: bytes, v: Verdict) -> None:
    """Every target ran after the warm-up; up at the end and errors meanwhile, listed."""
    runs0 = by_target(before, "tradeops_probe_runs_total")
    runs1 = by_target(after, "tradeops_probe_runs_total")
    up = by_target(after, "tradeops_up")
    err0 = by_target(before, "tradeops_probe_errors_total")
    err1 = by_target(after, "tradeops_probe_errors_total")
    stuck = sorted(t for t, n in runs0.items() if runs1.get(t, 0.0) <= n)
    errors = {k: n - err0.get(k, 0.0) for k, n in err1.items() if n > err0.get(k, 0.0)}
    kinds = Counter(t.split("/")[0] for t in runs1)
    v.lines.append(
        f"targets: {len(runs1)} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}); "
        f"runs after the warm-up: {sum(runs1.values()) - sum(runs0.values()):.0f}; "
        f"up at the end: {sum(up.values()):.0f}/{len(up)}"
    )
    down = sorted(t for t, value in up.items() if value != 1)
    if down:
        v.lines.append(f"down at the end: {', '.join(down)}")
    if errors:
        v.lines.append(
            "failed runs after the warm-up (target/reason): "
            + ", ".join(f"{k} {n:.0f}" for k, n in sorted(errors.items()))
        )
    if stuck:
        v.failures.append(f"no probe run after the warm-up: {', '.join(stuck)}")


def log_summary(path: Path, v: Verdict) -> None:
    """Exporter log lines by level and message, failures by kind and reason (one line
    per state change is expected)."""
    counts: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError, AttributeError):
            r = json.loads(line)
            reason = f" {r['kind']}/{r.get('reason')}" if r.get("reason") else ""
            counts[f"{r.get('level')} {r.get('msg')!r}{reason}"] += 1
    if counts:
        v.lines.append("exporter log: " + ", ".join(f"{n} x {k}" for k, n in counts.items()))


# -- main ----------------------------------------------------------------------------


@dataclass
class Run:
    """What one soak collected."""

    samples: list[Sample] = field(default_factory=list)
    scrapes: Scrapes = field(default_factory=Scrapes)
    before: bytes = b""
    """/metrics at the end of the warm-up."""
    after: bytes = b""
    """/metrics at the end."""


async def measure(exporter: Exporter, targets: int, args: argparse.Namespace, t0: float) -> Run:
    """Wait for every target's first successful run, warm up, then sample while scraping."""
    assert exporter.proc is not None
    proc = psutil.Process(exporter.proc.pid)
    run = Run()
    scraper, probe = Scraper(exporter.address), Scraper(exporter.address)
    first = await wait_until_up(probe, targets)
    up = len(by_target(first, "tradeops_probe_last_success_timestamp_seconds"))
    print(
        f"soak: {targets} targets ({up} of them up) and {series(first):,} series "
        f"{time.monotonic() - t0:.0f} s after the start; warm-up {args.warmup:g} s, "
        f"{args.minutes:g} min in all",
        flush=True,
    )
    stop = threading.Event()
    thread = threading.Thread(
        target=scraper.every, args=(args.scrape_every, run.scrapes, stop), name="soak-scraper"
    )
    thread.start()
    try:
        await asyncio.sleep(args.warmup)
        run.before = (await asyncio.to_thread(probe.get))[1]
        print(f"  warm-up over: {series(run.before):,} series", flush=True)
        run.scrapes.latencies.clear()  # the warm-up's scrapes are not judged
        run.scrapes.failures.clear()
        measured = args.minutes * 60 - args.warmup
        await sample_until(proc, measured, args.sample_every, run.samples)
        run.after = (await asyncio.to_thread(probe.get))[1]
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)
        scraper.close()
        probe.close()
    return run


async def soak(args: argparse.Namespace, root: Path) -> Run:
    """Start everything under ``root``, warm up, sample and scrape; stop everything."""
    stack = Stack(root)
    exporter: Exporter | None = None
    try:
        t0 = time.monotonic()
        await stack.start(args)
        config = exporter_config(stack.targets, args.interval)
        exporter = Exporter(root, root / "exporter.yml", free_port(), ["--log-format", "json"])
        await asyncio.to_thread(exporter.config_path.write_text, config)
        await asyncio.to_thread(exporter.start)
        count = sum(len(t) for t in stack.targets.values())
        return await measure(exporter, count, args, t0)
    finally:
        if exporter is not None:
            await asyncio.to_thread(exporter.stop)
        await stack.stop()


def verdict(run: Run, args: argparse.Namespace, log: Path) -> Verdict:
    """Judge the run: samples, scrapes, targets; summarise the exporter's log."""
    v = judge(run.samples, args)
    judge_scrapes(run.scrapes, v)
    judge_targets(run.before, run.after, v)
    log_summary(log, v)
    v.lines.insert(0, f"series at the end: {series(run.after):,}")
    return v


def write_json(path: str, run: Run, v: Verdict) -> None:
    """The figures, the failures and every sample."""
    samples = [asdict(s) for s in run.samples]
    doc = {"figures": v.figures, "failures": v.failures, "samples": samples}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; ``SOAK_MINUTES`` gives the default duration."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 30)))
    p.add_argument("--warmup", type=float, help="seconds (default: a sixth, 1 to 5 min)")
    p.add_argument("--scale-targets", type=int, default=20)
    p.add_argument("--streams", type=int, default=625, help="per scale target")
    p.add_argument("--scale-interval", type=float, default=15.0, help="scale targets' interval")
    p.add_argument("--interval", type=float, default=5.0, help="the real targets' interval")
    p.add_argument("--scrape-every", type=float, default=1.0)
    p.add_argument("--sample-every", type=float, default=5.0)
    p.add_argument("--max-rss-growth", type=float, default=0.05, help="a fraction")
    p.add_argument("--json", metavar="PATH", help="write the figures and every sample here")
    args = p.parse_args(argv)
    if args.warmup is None:
        args.warmup = min(300.0, max(60.0, args.minutes * 60 / 6))
    if args.warmup >= args.minutes * 60:
        p.error("the warm-up must be shorter than the soak")
    return args


def main() -> int:
    """Run the soak, print its summary; 1 when it failed."""
    args = parse_args()
    root = Path(tempfile.mkdtemp(prefix="tradeops-soak-"))
    try:
        run = asyncio.run(soak(args, root))
        v = verdict(run, args, root / "exporter" / "service.log")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(["", *v.lines]))
    for failure in v.failures:
        print(f"FAIL: {failure}")
    print("soak:", "FAILED" if v.failures else "passed")
    if args.json:
        write_json(args.json, run, v)
    return 1 if v.failures else 0


if __name__ == "__main__":
    sys.exit(main())
