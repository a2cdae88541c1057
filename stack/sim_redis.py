"""Redis side of the demo's traffic: heartbeat keys written by "platform
components" and an order stream with a consumer group that acknowledges most
entries."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import redis.asyncio as aioredis

HEARTBEATS = ("ingestion", "execution", "risk")
STREAM = "stream:orders"
GROUP = "risk-checks"


class RedisTraffic:
    """Writes heartbeats every second and an order every 200 ms; ``stall(name)``
    stops one heartbeat so the demo can show a gap."""

    def __init__(
        self, address: str, password: str | None = None, heartbeats: tuple[str, ...] = HEARTBEATS
    ) -> None:
        host, _, port = address.rpartition(":")
        self.client = aioredis.Redis(host=host, port=int(port), password=password)
        self.heartbeats = heartbeats
        self.stalled: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def stall(self, heartbeat: str) -> None:
        """Stop writing one heartbeat."""
        self.stalled.add(heartbeat)

    def unstall(self, heartbeat: str) -> None:
        """Write a stalled heartbeat again."""
        self.stalled.discard(heartbeat)

    async def _run(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        tick = 0
        while True:
            now = time.time()
            if tick % 5 == 0:
                for name in self.heartbeats:
                    if name not in self.stalled:
                        await self.client.set(f"heartbeat:{name}", f"{now:.3f}")
            await self.client.xadd(STREAM, {"side": "buy", "qty": str(tick % 100)}, maxlen=10_000)
            if tick % 3:  # the consumer acknowledges two of every three orders
                await self._consume()
            tick += 1
            await asyncio.sleep(0.2)

    async def _consume(self) -> None:
        entries: Any = await self.client.xreadgroup(GROUP, "risk-1", {STREAM: ">"}, count=10)
        for _, messages in entries or []:
            ids = [mid for mid, _ in messages[: max(1, len(messages) - 1)]]
            if ids:
                await self.client.xack(STREAM, GROUP, *ids)

    def start(self) -> None:
        """Run in the background of the current event loop."""
        self._task = asyncio.create_task(self._run(), name="sim-redis")

    async def stop(self) -> None:
        """Stop writing and close the connection."""
        if self._task is not None:
            # redis-py can swallow a cancellation that lands inside a command (one
            # resuming after the event loop was blocked) and the loop goes on:
            # cancel again until the task has ended
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.aclose()
