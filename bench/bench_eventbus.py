"""Event-bus probe figures: one probe run against the runtime stand-in, next to a bare
aiohttp GET + json.loads of the same endpoint, and canary round trips through the
Kafka-protocol broker and Redis. Prints medians and p99; not run by pytest.

    .venv/bin/python bench/bench_eventbus.py [runs] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.figures import Report, add_json_argument, quantile
from exporter import config as cfg
from exporter.kinds.eventbus import KIND
from exporter.kinds.eventbus.config import EventBusTarget
from exporter.kinds.eventbus.probe import EventBusState
from exporter.scheduler import run_probe
from stack import Redis, Tansu
from stack.sim_eventbus import EventBusSim


def _target(url: str, canary: str = "") -> EventBusTarget:
    text = f"eventbus:\n  - {{name: bench, url: '{url}', interval: 5s, timeout: 3s}}\n"
    if canary:
        text = text.replace("timeout: 3s}", f"timeout: 3s, canary: {canary}}}")
    target = cfg.parse(text, "bench.yml").targets["eventbus"][0]
    assert isinstance(target, EventBusTarget)
    return target


def _figures(label: str, samples: list[float]) -> float:
    samples.sort()
    median = statistics.median(samples)
    p99 = quantile(samples, 0.99)
    print(f"{label:<44} median {median * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms")
    return median


async def _probe_runs(target: EventBusTarget, runs: int) -> tuple[list[float], EventBusState]:
    state = EventBusState(target)
    out = []
    for _ in range(runs):
        outcome = await run_probe(KIND, target, state, 3.0, time.time)
        if not outcome.ok:
            raise RuntimeError(f"probe failed: {outcome.reason}: {outcome.error}")
        out.append(outcome.duration)
    return out, state


async def _bare_gets(url: str, runs: int) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as http:
        for _ in range(runs):
            start = time.perf_counter()
            async with http.get(url) as resp:
                json.loads(await resp.read())
            out.append(time.perf_counter() - start)
    return out


async def main(runs: int, json_path: str | None) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-eventbus-"))
    sim = await EventBusSim(rate=50).start()
    broker = Tansu(root).start()
    redis = Redis(root).start()
    try:
        bare_gets = await _bare_gets(sim.url, runs)
        bare = _figures("bare aiohttp GET + json.loads", bare_gets)
        health, state = await _probe_runs(_target(sim.url), runs)
        await state.aclose()
        probe = _figures("probe run, health endpoint (12 fields)", health)
        report = Report(
            "eventbus",
            f"{runs} probe runs each against the runtime stand-in; canaries through a Tansu "
            "broker and a redis-server",
            peer="a bare aiohttp GET + json.loads of the health endpoint",
        )
        report.add_latencies("probe run, health endpoint", health, bare_gets)
        print(f"{'':<44} ratio probe/bare {probe / bare:5.2f}")
        for name, canary in (
            (
                "kafka",
                f"{{kafka: {{bootstrap_servers: '{broker.bootstrap}', topic: bench-canary}}}}",
            ),
            ("redis", f"{{redis: {{address: '{redis.address}'}}}}"),
        ):
            durations, state = await _probe_runs(_target(sim.url, canary), runs)
            _figures(f"probe run, health + canary via {name}", durations[1:])
            report.add_latencies(f"probe run, health + canary via {name}", durations[1:])
            t = state.tracker
            mean_rtt = t.rtt.sum / max(1, t.rtt.count)
            print(
                f"{'':<44} canaries sent {t.sent}, received {t.received}, lost {t.lost}; "
                f"mean round trip {mean_rtt * 1000:.2f} ms"
            )
            report.add(f"canaries lost via {name}", "canaries", t.lost, ratio=False)
            await state.aclose()
        report.write(json_path)
    finally:
        await sim.stop()
        broker.kill()
        redis.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", type=int, default=200)
    add_json_argument(parser)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.json))
