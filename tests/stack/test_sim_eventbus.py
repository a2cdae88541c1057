"""The event-bus stand-in: its health JSON follows its real queue."""

from __future__ import annotations

import aiohttp

from stack.sim_eventbus import EventBusSim

from ..helpers import eventually


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
