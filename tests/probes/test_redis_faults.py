"""The Redis probe against hostile peers: every misbehaviour is one stable reason,
one log line, a bounded exporter and a fast /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.probes.redis import KIND, RedisState, RedisTarget
from exporter.scheduler import run_probe
from stack import Redis

from ..helpers import Running, Series, report, scrape_until, value, with_label
from ..hostile import Behaviour, HostilePeer, Usage, hostile_peer, record_fault

Factory = Callable[..., Any]
MB = 1 << 20
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
REPLIES: dict[Behaviour, bytes] = {"huge": b"$2000000000\r\n", "auth": WRONGPASS}
EXPECTED: dict[Behaviour, str] = {
    "silent": "timeout",
    "close": "protocol",
    "garbage": "protocol",
    "stream": "protocol",
    "slow": "timeout",
    "huge": "protocol",
    "auth": "auth",
}


def _config(address: str, extra: str = "", interval: str = "300ms", timeout: str = "250ms") -> str:
    return f"""
redis:
  - name: hostile
    address: "{address}"
    interval: {interval}
    timeout: {timeout}
{extra}
"""


def _runs(m: Series, target: str = "hostile") -> float:
    return value(m, "tradeops_probe_runs_total", kind="redis", target=target) or 0


def _errors(m: Series, target: str = "hostile") -> dict[str, float]:
    found = with_label(m, "tradeops_probe_errors_total", kind="redis", target=target)
    return {dict(k)["reason"]: v for k, v in found.items() if v}


def _failures(caplog: pytest.LogCaptureFixture, target: str = "hostile") -> list[logging.LogRecord]:
    """The WARNING "probe failed" lines for ``target``."""
    return [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING
        and r.getMessage() == "probe failed"
        and getattr(r, "fields", {}).get("target") == target
    ]


def _target(address: str, **extra: Any) -> RedisTarget:
    fields = {"name": "hostile", "address": address, "interval": 1.0, "timeout": 0.5}
    return RedisTarget.model_validate(fields | extra)


async def _scrape_times(run: Running, n: int = 20) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        await run.scrape()
        times.append(time.perf_counter() - start)
    return times


def _quantiles(xs: list[float]) -> str:
    """median / p99 / max in milliseconds."""
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    median = statistics.median(xs)
    return f"median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {xs[-1] * 1000:.1f} ms"


@contextlib.asynccontextmanager
async def _peer(behaviour: Behaviour) -> AsyncIterator[HostilePeer]:
    async with hostile_peer(behaviour, reply=REPLIES.get(behaviour, b"")) as peer:
        yield peer


@pytest.mark.parametrize("behaviour", list(EXPECTED))
async def test_a_hostile_peer_is_one_stable_reason_and_one_log_line(
    behaviour: Behaviour,
    tmp_path: Path,
    exporter_factory: Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="exporter")
    secret = "hostile-s3cret-pw"
    (tmp_path / "pw").write_text(secret)
    async with _peer(behaviour) as peer:
        run: Running = await exporter_factory(
            _config(peer.address, f'    password_file: "{tmp_path / "pw"}"')
        )
        m = await scrape_until(run, lambda m: _runs(m) >= 5, timeout=15)
        errors = _errors(m)
        record_fault("redis", behaviour, "/".join(sorted(errors)))
        assert set(errors) == {EXPECTED[behaviour]}, errors
        assert errors[EXPECTED[behaviour]] == _runs(m), "every run failed, for the same reason"
        assert value(m, "tradeops_up", kind="redis", target="hostile") == 0
        assert with_label(m, "tradeops_redis_memory_used_bytes") == {}
        times = await _scrape_times(run)
        assert max(times) < 0.2, f"/metrics: {_quantiles(times)}"
        failures = _failures(caplog)  # before the peer goes away (then: refused)
    assert len(failures) == 1, [getattr(r, "fields", {}) for r in failures]
    assert failures[0].fields["reason"] == EXPECTED[behaviour]  # type: ignore[attr-defined]
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(getattr(record, "fields", ""))


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("not-the-password", "invalid username-password pair"),  # WRONGPASS
        (None, "must be called with the client already authenticated"),  # NOAUTH
    ],
)
async def test_a_real_server_refusing_the_credentials_is_auth(
    password: str | None,
    message: str,
    tmp_path: Path,
    exporter_factory: Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="exporter")
    server = Redis(tmp_path / "auth", password="the-real-s3cret").start()
    try:
        extra = ""
        if password is not None:
            (tmp_path / "pw").write_text(password)
            extra = f'    password_file: "{tmp_path / "pw"}"'
        run: Running = await exporter_factory(_config(server.address, extra))
        m = await scrape_until(run, lambda m: _runs(m) >= 4)
        assert _errors(m) == {"auth": _runs(m)}
        failures = _failures(caplog)
        assert len(failures) == 1
        assert message in failures[0].fields["error"]  # type: ignore[attr-defined]
        for record in caplog.records:
            for text in ("the-real-s3cret", password or "the-real-s3cret"):
                assert text not in record.getMessage()
                assert text not in str(getattr(record, "fields", ""))
    finally:
        server.stop()


class _RssPeak(threading.Thread):
    """Samples the process's resident set every 5 ms from a thread, so a loop
    blocked in a parser does not hide the peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.start_rss = self.rss()
        self.peak = self.start_rss
        self._done = threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self.rss())

    def stop(self) -> int:
        """Stop sampling; the peak growth above the start, in bytes."""
        self._done.set()
        self.join()
        return self.peak - self.start_rss


async def test_a_huge_bulk_string_is_cut_at_the_budget(
    exporter_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    """``$2000000000`` and a stream of filler: the run fails as ``protocol`` with the
    budget's message, and the exporter's memory stays flat."""
    caplog.set_level(logging.DEBUG, logger="exporter")
    before = Usage.now()
    sampler = _RssPeak()
    sampler.start()
    async with hostile_peer("huge", reply=b"$2000000000\r\n") as peer:
        run: Running = await exporter_factory(
            _config(peer.address, interval="1200ms", timeout="1s")
        )
        m = await scrape_until(run, lambda m: _runs(m) >= 2, timeout=15)
        peak = sampler.stop()
        max_rss = Usage.now().max_rss_bytes - before.max_rss_bytes
        sent = peer.sent
        failures = _failures(caplog)
    report(
        f"redis huge bulk string: {sent / MB:.0f} MB sent by the peer in {_runs(m):.0f} runs;"
        f" exporter RSS peak +{peak / MB:.1f} MB, max RSS +{max_rss / MB:.1f} MB"
    )
    assert peak < 100 * MB, f"RSS grew {peak / MB:.0f} MB"
    assert max_rss < 100 * MB, f"max RSS grew {max_rss / MB:.0f} MB"
    assert _errors(m) == {"protocol": _runs(m)}
    assert len(failures) == 1
    assert "response budget of 1MiB" in failures[0].fields["error"]  # type: ignore[attr-defined]


async def _flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A fake peer (no real server announces two billion elements): answers the first
    request with ``*2000000000`` and then ``:1`` elements without end."""
    with contextlib.suppress(ConnectionError):
        await reader.read(65536)
        writer.write(b"*2000000000\r\n")
        elements = b":1\r\n" * 16384
        while not writer.is_closing():
            writer.write(elements)
            await writer.drain()
    writer.close()


class _LoopHolds:
    """A task that sleeps 1 ms in a loop and records how late it wakes: the longest
    time anything held the event loop."""

    def __init__(self) -> None:
        self.holds: list[float] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            self.holds.append(time.perf_counter() - start - 0.001)

    async def stop(self) -> list[float]:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.holds


async def test_a_flood_of_tiny_elements_leaves_the_loop_and_metrics_responsive(
    redis_server: Redis, exporter_factory: Factory
) -> None:
    """Within a budget large enough not to cut it, a reply of millions of ``:1``
    elements is parsed in slices: scrapes stay fast, the loop is never held long,
    and a healthy target on the same exporter keeps being probed."""
    server = await asyncio.start_server(_flood, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        run: Running = await exporter_factory(f"""
redis:
  - {{name: hostile, address: "127.0.0.1:{port}", interval: 1s, timeout: 800ms,
      response_budget: 1GiB}}
  - {{name: healthy, address: "{redis_server.address}", interval: 300ms, timeout: 250ms}}
""")
        await scrape_until(run, lambda m: _runs(m) >= 1 and _runs(m, "healthy") >= 1)
        # what the test process imported is not the exporter's: a full collection of
        # it (100-300 ms in the whole suite's process) would be measured as a hold
        gc.freeze()
        try:
            holds = _LoopHolds()
            times: list[float] = []
            end = time.perf_counter() + 3.0
            while time.perf_counter() < end:
                start = time.perf_counter()
                m = await run.scrape()
                times.append(time.perf_counter() - start)
                await asyncio.sleep(0.01)
            loop_holds = await holds.stop()
        finally:
            gc.unfreeze()
        m = await run.scrape()
    report(f"redis tiny-element flood: /metrics {_quantiles(times)} ({len(times)} scrapes)")
    report(f"redis tiny-element flood: event-loop holds {_quantiles(loop_holds)}")
    assert set(_errors(m)) <= {"timeout", "protocol"} and _errors(m)
    assert value(m, "tradeops_up", kind="redis", target="healthy") == 1
    assert _errors(m, "healthy") == {}
    assert max(loop_holds) < 0.05, f"the loop was held {max(loop_holds) * 1000:.0f} ms"
    assert statistics.median(times) < 0.05, f"/metrics: {_quantiles(times)}"
    assert max(times) < 0.25, f"/metrics: {_quantiles(times)}"


@pytest.mark.parametrize("behaviour", ["close", "garbage"])
async def test_a_thousand_failed_runs_hold_no_resources(behaviour: Behaviour) -> None:
    """fds, tasks, threads and RSS at a plateau over ~1000 fast failed runs."""
    async with _peer(behaviour) as peer:
        target = _target(peer.address)
        state = RedisState(target)
        reasons: set[str | None] = set()
        try:
            for _ in range(50):  # warm-up: caches, the pool's first allocations
                reasons.add((await run_probe(KIND, target, state, 0.5)).reason)
            before = Usage.now()
            start = time.perf_counter()
            for _ in range(1000):
                reasons.add((await run_probe(KIND, target, state, 0.5)).reason)
            elapsed = time.perf_counter() - start
            after = Usage.now()
        finally:
            await state.aclose()
    report(
        f"redis 1000 runs against {behaviour}: {elapsed:.1f} s; fds {before.fds}->{after.fds},"
        f" tasks {before.tasks}->{after.tasks}, threads {before.threads}->{after.threads},"
        f" RSS {before.rss_bytes / MB:.0f}->{after.rss_bytes / MB:.0f} MB"
    )
    assert reasons == {EXPECTED[behaviour]}
    assert after.fds <= before.fds + 3
    assert after.tasks <= before.tasks + 2
    assert after.threads <= before.threads + 1
    assert after.rss_bytes - before.rss_bytes < 20 * MB
