"""The scheduler against a real redis-server (supervision, connection lifetime),
and against a fake kind for what no real service can force (a state slow to close,
an undeclared family)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exporter import kinds
from exporter.catalogue import core as C
from exporter.config import Config
from exporter.kinds import KINDS
from exporter.probe import ProbeKind
from exporter.scheduler import Scheduler, TargetView
from exporter.snapshot import SnapshotStore
from stack import Redis

from .fake_kind import DECLARED, UNDECLARED, FakeTarget, fake_kind
from .helpers import Running, eventually, parse, ran, report, start_exporter, value

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


def _fake_config(
    monkeypatch: pytest.MonkeyPatch, kind: ProbeKind[Any, Any], **targets: Any
) -> Config:
    """A config of fake targets (name -> FakeTarget fields); the fake kind registered
    for as long as the test runs."""
    monkeypatch.setitem(KINDS, kind.name, kind)
    made = tuple(
        FakeTarget(name=name, interval=60.0, timeout=1.0, **fields)
        for name, fields in targets.items()
    )
    return Config(path="fake.yml", targets={kind.name: made}, modules={})


async def test_a_reload_stops_the_changed_targets_concurrently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four changed targets whose state takes 0.6 s to close: the reload takes about
    0.6 s, as a shutdown does, not 2.4 s."""
    kind = fake_kind(close_seconds=0.6)
    names = [f"t{i}" for i in range(4)]
    scheduler = Scheduler(SnapshotStore())
    await scheduler.apply(_fake_config(monkeypatch, kind, **{n: {} for n in names}))
    try:
        await asyncio.sleep(0.4)  # every first run done
        loop = asyncio.get_running_loop()
        start = loop.time()
        changed = _fake_config(monkeypatch, kind, **{n: {"address": "fake:2"} for n in names})
        await scheduler.apply(changed)
        elapsed = loop.time() - start
        assert [r.target.address for r in scheduler.runners.values()] == ["fake:2"] * 4  # type: ignore[attr-defined]
        report(f"reload of 4 changed targets closing in 0.6 s each: {elapsed:.2f} s")
        assert 0.55 < elapsed < 1.8  # one at a time: 2.4 s
    finally:
        await scheduler.stop()


async def test_the_view_has_one_row_per_target_in_config_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kind = fake_kind()
    store = SnapshotStore()
    scheduler = Scheduler(store, now=lambda: 1000.0)
    await scheduler.apply(_fake_config(monkeypatch, kind, b={}, a={"stray": True}))
    try:
        assert [(v.target, v.runs, v.up, v.last_reason) for v in scheduler.view()] == [
            ("b", 0, False, None),
            ("a", 0, False, None),
        ]
        await asyncio.gather(*(r.run_once() for r in scheduler.runners.values()))
        rows = scheduler.view()
        assert rows == [
            TargetView("fake", "b", 60.0, True, None, 1000.0, 1, 1),
            TargetView("fake", "a", 60.0, False, "other", None, 1, 1),
        ]
        with pytest.raises(AttributeError):
            rows[0].up = False  # type: ignore[misc]
        await scheduler.apply(_fake_config(monkeypatch, kind, c={}, a={"stray": True}, b={}))
        assert [v.target for v in scheduler.view()] == ["c", "a", "b"]
    finally:
        await scheduler.stop()


async def test_a_target_emitting_an_undeclared_family_is_down_and_serves_none_of_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The registry guard on a scheduled run (the fake kind forces it: no real kind
    emits a family it did not declare)."""
    caplog.set_level(logging.INFO, logger="exporter")
    kind = fake_kind()
    store = SnapshotStore([*kinds.ALL, DECLARED, UNDECLARED])  # would serve them if put
    scheduler = Scheduler(store)
    await scheduler.apply(_fake_config(monkeypatch, kind, a={"stray": True}))
    try:
        await scheduler.runners[("fake", "a")].run_once()
        m = parse(store.body().decode())
        assert value(m, "tradeops_up", kind="fake", target="a") == 0
        errors = "tradeops_probe_errors_total"
        assert value(m, errors, kind="fake", target="a", reason="other") == 1
        assert not {n for n, _ in m} & {DECLARED.name, UNDECLARED.name, C.BUILD_INFO.name}
        [line] = [r for r in caplog.records if r.getMessage() == "probe failed"]
        assert line.fields["reason"] == "other"  # type: ignore[attr-defined]
        assert "tradeops_fake_stray" in line.fields["error"]  # type: ignore[attr-defined]
    finally:
        await scheduler.stop()
