"""The closed market: exporter A is reloaded with every target on a calendar that
has no session today; then the ingest stops, a heartbeat goes stale, the FIX
session logs out and a Kafka consumer group stops — none may page — and a Redis
goes down, which must page (a server down is a fault at any hour)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from stack.chain import CLOSED, HEARTBEAT, Chain

from .faults import FAULTS, Fault
from .runner import Run, detection_bound, rule_of

GATED = (
    "TimescaleTableStale",
    "RedisHeartbeatStale",
    "FixSessionNotLoggedOn",
    "KafkaConsumerGroupStopped",
)


@dataclass
class ClosedMarket:
    """What the closed-market phase saw."""

    gated: bool = False
    paged: bool = False
    paged_after: float = 0.0
    held: float = 0.0
    unwanted: list[str] = field(default_factory=list)
    error: str = ""


def query(chain: Chain, promql: str) -> list[dict[str, Any]]:
    """An instant query against the chain's Prometheus."""
    url = f"http://{chain.prometheus.address}/api/v1/query?" + urllib.parse.urlencode(
        {"query": promql}
    )
    with urllib.request.urlopen(url, timeout=5) as resp:
        result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
    return result


async def _until(chain: Chain, promql: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if await asyncio.to_thread(query, chain, promql):
            return True
        await asyncio.sleep(chain.speed.interval)
    return False


def _hold(run: Run) -> float:
    """Long enough for every gated alert to have fired had it not been gated."""
    s = run.chain.speed
    delays = {f.alert: f.delay(s) for f in FAULTS}
    return max(
        detection_bound(s, rule_of(run.chain.root / "rules", a), 0.0, delays.get(a, 0.0))
        for a in GATED
    )


async def closed_market(run: Run) -> ClosedMarket:
    """Close the market, break what a closed market may leave broken, stop a Redis."""
    chain = run.chain
    out = ClosedMarket()
    try:
        chain.closed_market = True
        config = chain.config_a()
        chain.write_config_a()
        chain.reload(chain.exporter_a)
        targets = sum(len(v) for k, v in config.items() if k not in ("global", "calendars"))
        wait = 10 * chain.speed.interval + 10
        out.gated = await _until(
            chain,
            f'count(tradeops:target_in_session{{calendar="{CLOSED}"}} == 0) == {targets}',
            wait,
        )
        start = time.monotonic()
        chain.ticks.pause()
        chain.redis_traffic.stall(HEARTBEAT)
        chain.fix_stop.set()
        await chain.kafka.stop_group("chain-pricing")
        await asyncio.to_thread(chain.redis_stop.stop)
        redis_down = next(f for f in FAULTS if f.name == "Redis stopped")
        page = await _page(run, redis_down, start)
        out.paged, out.paged_after = True, page
        out.held = _hold(run)
        await asyncio.sleep(max(0.0, start + out.held - time.monotonic()))
        out.unwanted = [
            n.line()
            for n in chain.sinks.notifications
            if n.received >= start
            and n.status == "firing"
            and "Watchdog" not in n.alertnames
            and not ("RedisDown" in n.alertnames and run.about(redis_down, n))
        ]
    except Exception as exc:  # recorded; the closed-market test reports it
        out.error = f"{type(exc).__name__}: {exc}"
    return out


async def _page(run: Run, fault: Fault, start: float) -> float:
    out = run.outcome(fault)
    found = await run.chain.sinks.wait_for(
        lambda n: (
            n.received >= start
            and n.sink == "pagerduty"
            and n.status == "firing"
            and fault.alert in n.alertnames
            and run.about(fault, n)
        ),
        out.bound * 2 + 30,
    )
    return found[0].received - start
