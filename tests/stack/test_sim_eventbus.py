"""The event-bus stand-in: its health JSON follows its real queue; its /metrics
serve the runtime contract."""

from __future__ import annotations

import aiohttp

from bundle.contract import CONTRACT
from stack.sim_eventbus import EventBusSim

from ..helpers import eventually, parse


async def test_snapshot_follows_traffic_and_degrade_switch() -> None:
    sim = await EventBusSim(rate=100, capacity=40, handlers=2, error_every=25).start()
    try:
        async with aiohttp.ClientSession() as http:

            async def get() -> dict[str, object]:
                async with http.get(sim.url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    assert resp.status == 200
                    doc: dict[str, object] = await resp.json()
                    return doc

            async def flowing() -> bool:
                doc = await get()
                published, errors = doc["published_events"], doc["handler_errors"]
                assert isinstance(published, int) and isinstance(errors, int)
                return published >= 30 and errors >= 1 and "last_event_at" in doc

            await eventually(flowing, timeout=10)
            base = sim.url.removesuffix("/health")
            async with http.post(f"{base}/degrade") as resp:
                assert resp.status == 200

            async def backlog_full_and_dropping() -> bool:
                doc = await get()
                dropped = doc["dropped_events"]
                assert isinstance(dropped, int)
                return doc["queue_size"] == 40 and dropped > 0 and doc["status"] == "fail"

            await eventually(backlog_full_and_dropping, timeout=10)
            doc = await get()
            lag = doc["dispatch_lag_seconds"]
            assert isinstance(lag, float) and lag > 0
            async with http.post(f"{base}/recover") as resp:
                assert resp.status == 200

            async def drained() -> bool:
                size = (await get())["queue_size"]
                assert isinstance(size, int)
                return size < 40 // 2

            await eventually(drained, timeout=10)
    finally:
        await sim.stop()


async def test_token_required_when_configured() -> None:
    sim = await EventBusSim(rate=0, token="t0ken").start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(sim.url) as resp:
                assert resp.status == 401
            async with http.get(sim.url, headers={"Authorization": "Bearer t0ken"}) as resp:
                assert resp.status == 200
    finally:
        await sim.stop()


async def test_metrics_serve_the_runtime_contract_under_the_sla() -> None:
    """``/metrics`` (scraped as job trading-runtime in the demo and compose) holds the
    contract's position drift per book and strategy, and nothing else, under the
    SLA's 0.5 %; the token guards it as it guards the health endpoint."""
    sim = await EventBusSim(rate=0, token="t0ken").start()
    try:
        url = f"http://{sim.address}/metrics"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as resp:
                assert resp.status == 401
            async with http.get(url, headers={"Authorization": "Bearer t0ken"}) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                series = parse(await resp.text())
    finally:
        await sim.stop()
    assert {name for name, _ in series} == {m.name for m in CONTRACT}
    (drift,) = CONTRACT
    for (_, labels), ratio in series.items():
        assert {k for k, _ in labels} == set(drift.labels)
        assert 0 <= ratio < 0.8 * 0.005  # under the dashboard's amber, far under the SLA
    assert len(series) == len(sim.position_drift) >= 2
