"""The scheduler against a real redis-server: supervision, connection lifetime."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stack import Redis

from .helpers import Running, eventually, ran, start_exporter, value

Factory = Callable[..., Any]


def _target(server: Redis, name: str = "cache", interval: str = "1s") -> str:
    return f"""
redis:
  - {{name: {name}, address: "{server.address}", interval: {interval}, timeout: 500ms}}
"""


def _exporter_connections(server: Redis) -> int:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"CLIENT LIST\r\n")
        data = b""
        while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
            data += s.recv(65536)
    return data.count(b"name=tradeops-exporter ")


async def test_a_crashed_loop_is_restarted_and_counted(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    """Forces a crash of the framework's own loop (a real service cannot cause
    one) by making the snapshot store fail once; the loop must come back."""
    run: Running = await exporter_factory(_target(redis_server))
    await eventually(lambda: ran(run))
    store = run.exporter.store
    real_put = store.put
    failures = iter([True])

    def flaky_put(snap: Any) -> None:
        if snap.target == "cache" and next(failures, False):
            raise RuntimeError("store failure")
        real_put(snap)

    store.put = flaky_put  # type: ignore[method-assign]

    async def restarted() -> bool:
        m = await run.scrape()
        return value(m, "tradeops_exporter_loop_restarts_total", kind="redis", target="cache") == 1

    await eventually(restarted, timeout=15)  # an interval, the 1 s backoff and a run
    before = await run.runs()
    await eventually(lambda: ran(run, above=before), timeout=4)


async def test_connections_are_reused_and_closed_on_stop(
    redis_server: Redis, tmp_path: Path
) -> None:
    run = await start_exporter(_target(redis_server, interval="600ms"), tmp_path)
    try:
        await eventually(lambda: ran(run, above=3))
        assert _exporter_connections(redis_server) == 1  # one pooled connection, reused
    finally:
        await run.stop()

    async def closed() -> bool:
        return _exporter_connections(redis_server) == 0

    await eventually(closed, timeout=3)


async def test_a_changed_target_gets_a_new_loop_and_the_old_one_closes(
    redis_server: Redis, tmp_path: Path
) -> None:
    run = await start_exporter(_target(redis_server), tmp_path)
    try:
        await eventually(lambda: ran(run))
        old = run.exporter.scheduler.runners[("redis", "cache")]
        Path(run.exporter.config_path).write_text(_target(redis_server, interval="2s"))
        ok, _ = await run.exporter.reload()
        assert ok
        new = run.exporter.scheduler.runners[("redis", "cache")]
        assert new is not old and new.target.interval_s == 2.0
        await eventually(lambda: ran(run))
        assert _exporter_connections(redis_server) == 1
    finally:
        await run.stop()
