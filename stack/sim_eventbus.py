"""A stand-in for the runtime's event bus: a real asyncio queue with producers and
handlers, and an aiohttp endpoint serving its health snapshot.

The JSON has the shape of the runtime's event-bus health snapshot (``status``,
``queue_size``, ``dropped_events``, ``handler_errors``, ``last_event_at`` ...)
plus ``dispatch_lag_seconds`` (age of the oldest queued event). Every value is
read from the live queue and its counters, so it moves as traffic flows.

``GET /metrics`` serves what the trading runtime exports for the bundle's
rules (bundle/contract.py, docs/contract.md), scraped by Prometheus as job
``trading-runtime``: ``tradeops_runtime_position_drift_ratio`` per book and
strategy, from ``position_drift`` (small values, well under the SLA's 0.5 %).

``POST /degrade`` stalls the handlers and multiplies the publish rate, so the
backlog grows until the queue is full and events are dropped; ``POST /recover``
undoes it. ``publish()``, ``pause_handlers()`` and ``resume_handlers()`` let
tests drive the queue exactly.

Entry points: ``EventBusSim`` (``await start()``, ``url``, ``await stop()``) or
``python -m stack.sim_eventbus --port 8089 --rate 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bundle.contract import BY_NAME

WINDOW_SECONDS = 60.0
"""Drops and handler errors within this window grade the status."""
DRIFT = BY_NAME["tradeops_runtime_position_drift_ratio"]
POSITION_DRIFT: dict[tuple[str, str], float] = {
    ("equities", "mm"): 0.0012,
    ("futures", "basis"): 0.0004,
    ("fx", "carry"): 0.0,
}
"""The stand-in's books and strategies and their position drift (0.0012 is 0.12 %)."""


@dataclass(slots=True)
class Event:
    """One event on the bus."""

    seq: int
    enqueued: float
    fail: bool


class EventBusSim:
    """The runtime stand-in: queue, producer, handlers, health endpoint."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        capacity: int = 200,
        rate: float = 20.0,
        handlers: int = 2,
        handle_seconds: float = 0.005,
        error_every: int = 0,
        token: str | None = None,
        path: str = "/health",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.path, self.token = host, port, path, token
        self.ssl_context = ssl_context
        self.capacity, self.rate, self.handlers = capacity, rate, handlers
        self.handle_seconds, self.error_every = handle_seconds, error_every
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=capacity)
        self.waiting: deque[float] = deque()  # enqueue times, in queue order
        self.published = self.dropped = self.handler_errors = self.handled = 0
        self.last_event_at: float | None = None
        self.last_error_at: float | None = None
        self.started_at = time.time()
        self.degraded = False
        self.position_drift = dict(POSITION_DRIFT)
        """(book, strategy) -> drift ratio, as ``/metrics`` serves it."""
        self._recent: deque[tuple[float, str]] = deque()
        self._handlers_open = asyncio.Event()
        self._handlers_open.set()
        self._work = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The health endpoint's URL (after start)."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}{self.path}"

    @property
    def address(self) -> str:
        """``host:port`` (after start): the scrape target of ``/metrics``."""
        return f"{self.host}:{self.port}"

    async def start(self) -> EventBusSim:
        """Start producer, handlers and the HTTP endpoint."""
        app = web.Application()
        app.add_routes(
            [
                web.get(self.path, self._health),
                web.get("/metrics", self._metrics),
                web.post("/degrade", self._degrade),
                web.post("/recover", self._recover),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._tasks = [asyncio.create_task(self._produce(), name="sim-eventbus-producer")]
        self._tasks += [
            asyncio.create_task(self._handle(), name=f"sim-eventbus-handler-{i}")
            for i in range(self.handlers)
        ]
        return self

    async def stop(self) -> None:
        """Stop everything it started."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the bus

    def publish(self, count: int = 1, fail: bool = False) -> int:
        """Publish ``count`` events now; returns how many were dropped (queue full)."""
        dropped = 0
        for _ in range(count):
            now = time.time()
            event = Event(self.published + self.dropped, time.monotonic(), fail)
            try:
                self.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1
                dropped += 1
                self._recent.append((now, "drop"))
                continue
            self.waiting.append(event.enqueued)
            self.published += 1
            self._work.set()
        return dropped

    def pause_handlers(self) -> None:
        """Handlers stop taking events: the backlog grows."""
        self._handlers_open.clear()

    def resume_handlers(self) -> None:
        """Handlers take events again."""
        self._handlers_open.set()

    def degrade(self, on: bool = True) -> None:
        """Degraded: handlers stall, producers publish ten times faster (drops follow)."""
        self.degraded = on
        if on:
            self.pause_handlers()
        else:
            self.resume_handlers()

    async def _produce(self) -> None:
        while True:
            rate = self.rate * (10 if self.degraded else 1)
            if rate <= 0:
                await asyncio.sleep(0.2)
                continue
            self.publish(1, fail=self.error_every > 0 and self.published % self.error_every == 0)
            await asyncio.sleep(1.0 / rate)

    async def _handle(self) -> None:
        while True:
            await self._handlers_open.wait()
            try:  # no await between the check and the take: a pause is exact
                event = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                self._work.clear()
                await self._work.wait()
                continue
            self.waiting.popleft()
            try:
                await asyncio.sleep(self.handle_seconds)
                if event.fail:
                    raise RuntimeError("handler failed")
                self.handled += 1
            except RuntimeError:
                self.handler_errors += 1
                self.last_error_at = time.time()
                self._recent.append((self.last_error_at, "error"))
            finally:
                self.last_event_at = time.time()
                self.queue.task_done()

    # -- the health snapshot

    def dispatch_lag(self) -> float:
        """Seconds the oldest queued event has waited (0 when the queue is empty)."""
        return time.monotonic() - self.waiting[0] if self.waiting else 0.0

    def status(self) -> tuple[str, list[str]]:
        """ok / warn / fail, graded like the runtime's evaluator (on a recent window)."""
        now = time.time()
        while self._recent and now - self._recent[0][0] > WINDOW_SECONDS:
            self._recent.popleft()
        drops = sum(1 for _, kind in self._recent if kind == "drop")
        errors = len(self._recent) - drops
        grades: list[tuple[int, str]] = []
        depth = self.queue.qsize()
        if depth >= self.capacity * 0.8:
            grades.append((2, f"Queue has {depth} pending events; worker may be stalled"))
        elif depth >= self.capacity * 0.2:
            grades.append((1, f"Queue has {depth} pending events; monitor backlog"))
        if drops:
            grades.append((1 if drops < 5 else 2, f"{drops} events dropped in the last minute"))
        if errors:
            grades.append((1 if errors < 3 else 2, f"{errors} handler errors in the last minute"))
        worst = max((g for g, _ in grades), default=0)
        return ("ok", "warn", "fail")[worst], [text for _, text in grades]

    def snapshot(self) -> dict[str, Any]:
        """The health document, from the live counters."""
        status, issues = self.status()
        doc: dict[str, Any] = {
            "service": "event_bus",
            "generated_at": datetime.now(tz=UTC).isoformat(),
            "status": status,
            "expected": True,
            "running": bool(self._tasks),
            "loop_running": bool(self._tasks),
            "queue_size": self.queue.qsize(),
            "queue_capacity": self.capacity,
            "subscriber_count": self.handlers,
            "topic_subscribers": {"telemetry.*": self.handlers},
            "published_events": self.published,
            "dropped_events": self.dropped,
            "handler_errors": self.handler_errors,
            "dispatch_lag_seconds": round(self.dispatch_lag(), 6),
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "issues": issues,
            "metadata": {"degraded": self.degraded, "handled_events": self.handled},
        }
        for key, ts in (
            ("last_event_at", self.last_event_at),
            ("last_error_at", self.last_error_at),
        ):
            if ts is not None:
                doc[key] = datetime.fromtimestamp(ts, tz=UTC).isoformat()
        return doc

    def metrics(self) -> str:
        """The runtime contract's series in the Prometheus text format."""
        lines = [f"# HELP {DRIFT.name} {DRIFT.help}", f"# TYPE {DRIFT.name} {DRIFT.type}"]
        for (book, strategy), ratio in sorted(self.position_drift.items()):
            lines.append(f'{DRIFT.name}{{book="{book}",strategy="{strategy}"}} {ratio!r}')
        return "\n".join(lines) + "\n"

    # -- HTTP

    def _authorised(self, request: web.Request) -> bool:
        return self.token is None or request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _health(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "missing bearer token"}, status=401)
        return web.json_response(self.snapshot())

    async def _metrics(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401, text="missing bearer token\n")
        return web.Response(
            text=self.metrics(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )

    async def _degrade(self, request: web.Request) -> web.Response:
        self.degrade(True)
        return web.json_response({"degraded": True})

    async def _recover(self, request: web.Request) -> web.Response:
        self.degrade(False)
        return web.json_response({"degraded": False})


async def run(host: str = "127.0.0.1", port: int = 8089, rate: float = 20.0) -> None:
    """Serve the stand-in until cancelled."""
    sim = await EventBusSim(host=host, port=port, rate=rate).start()
    print(f"event-bus stand-in: {sim.url} (POST /degrade, POST /recover)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main() -> None:
    """``python -m stack.sim_eventbus``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.host, args.port, args.rate))


if __name__ == "__main__":
    main()
