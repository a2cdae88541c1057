"""The HTTP server against hostile clients: slowloris, idle keep-alive, a flood of
connections, a client that stops reading, /probe requests queueing for a slot.

Where file descriptors matter the exporter runs as a real process (its fds are
counted in /proc); the header deadline between keep-alive requests is checked
in-process behind the real listener, the /probe deadlines through pytest-aiohttp's
``aiohttp_client`` (``tests.http_fixtures``). Each guard scenario also reads the
guard's own series (``tradeops_exporter_http_connections*``) from /metrics: the close
counted under its ``why``, and the open-connection gauge back at its baseline (the
scrape's own connection) afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import statistics
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from exporter import config as cfg
from exporter.app import Exporter as App
from exporter.http_guard import HTTPLimits, start_http
from exporter.server import build_app
from stack import Exporter, Redis, wait_for_port

from .helpers import Series, eventually, parse, report, self_signed_cert, value, with_label
from .hostile import hostile_peer
from .http_fixtures import ClientFactory, exporter_client

__all__ = ["exporter_client"]  # the fixture, used by name
Process = Callable[..., Exporter]
REQUEST = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n\r\n"
OPEN = "tradeops_exporter_http_connections"
LIMIT = "tradeops_exporter_http_connections_limit"
CLOSED = "tradeops_exporter_http_connections_closed_total"
WHYS = ("limit", "header_timeout", "idle_timeout", "not_reading")


async def _scrape(url: str) -> Series:
    """One /metrics scrape on a connection of its own, parsed."""
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
        assert resp.status == 200
        return parse(await resp.text())


def _closes(m: Series) -> dict[str, float | None]:
    """``tradeops_exporter_http_connections_closed_total`` by ``why``."""
    return {why: value(m, CLOSED, why=why) for why in WHYS}


def _only(why: str, n: int) -> dict[str, float]:
    """The closes expected when ``n`` connections were closed for ``why``, none otherwise."""
    return {w: float(n if w == why else 0) for w in WHYS}


async def _open_back_to_baseline(url: str) -> None:
    """The open-connection gauge falls back to 1: the scrape reading it."""

    async def check() -> bool:
        return value(await _scrape(url), OPEN) == 1

    await eventually(check, timeout=5.0)


def _fds(exp: Exporter) -> int:
    assert exp.proc is not None
    return len(os.listdir(f"/proc/{exp.proc.pid}/fd"))


async def _settled_fds(exp: Exporter, want: int | None = None, timeout: float = 5.0) -> int:
    """The exporter's fd count once it stops changing (or once it is ``want`` or fewer)."""
    last, same, end = -1, 0, time.monotonic() + timeout
    while time.monotonic() < end:
        now = _fds(exp)
        if want is not None and now <= want:
            return now
        same = same + 1 if now == last else 0
        if want is None and same >= 3:
            return now
        last = now
        await asyncio.sleep(0.1)
    return _fds(exp)


@pytest.fixture
def exporter_process(tmp_path: Path) -> Iterator[Process]:
    """Start exporter processes with no targets and the given flags; stopped afterwards.
    ``https=True``: ready once its port accepts (its health check needs TLS)."""
    started: list[Exporter] = []

    def start(*args: str, https: bool = False, config_text: str = "") -> Exporter:
        config = tmp_path / f"config-{len(started)}.yml"
        config.write_text(config_text)
        exp = Exporter(tmp_path / f"exporter-{len(started)}", config, extra_args=list(args))
        if https:
            exp.wait_ready = lambda: wait_for_port(exp.port, exp.ready_timeout, exp.proc)  # type: ignore[method-assign]
        started.append(exp)
        return exp.start()

    yield start
    for exp in started:
        exp.stop()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length: (status, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(
        int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:")
    )
    return int(lines[0].split()[1]), await reader.readexactly(length)


async def _closed_within(
    reader: asyncio.StreamReader, seconds: float, since: float | None = None
) -> float | None:
    """Seconds from ``since`` (monotonic; default now) until the server closed the
    connection (EOF or reset), None if it did not within ``seconds``; anything it sends
    on the way is read and dropped."""
    start = time.monotonic() if since is None else since
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            try:
                while await reader.read(65536):
                    pass
            except ConnectionError:
                pass
            return time.monotonic() - start
    return None


async def _scrape_times(
    url: str, stop: asyncio.Event, ssl_ctx: ssl.SSLContext | None = None
) -> list[float]:
    """Seconds per /metrics scrape (a new connection each) until ``stop`` is set."""
    times: list[float] = []
    connector = aiohttp.TCPConnector(force_close=True, ssl=ssl_ctx or False)
    async with aiohttp.ClientSession(connector=connector) as session:
        while not stop.is_set():
            start = time.perf_counter()
            async with session.get(
                url + "/metrics", timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                assert resp.status == 200
                await resp.read()
            times.append(time.perf_counter() - start)
            await asyncio.sleep(0.05)
    return times


async def _trickle(writers: Sequence[asyncio.StreamWriter], stop: asyncio.Event) -> None:
    """One more header byte on every connection every 0.2 s: never a complete request."""
    while not stop.is_set():
        for writer in writers:
            if not writer.is_closing():
                with contextlib.suppress(ConnectionError):
                    writer.write(b"X")
        await asyncio.sleep(0.2)


async def test_slowloris_connections_are_closed_after_the_header_timeout(
    exporter_process: Process,
) -> None:
    exp = exporter_process("--header-timeout", "1s")
    url = f"http://{exp.address}"
    baseline = await _settled_fds(exp)
    before = await _scrape(url)
    opened = time.monotonic()
    conns = [await asyncio.open_connection("127.0.0.1", exp.port) for _ in range(100)]
    for _, writer in conns:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: exporter\r\nX-Slow: ")
    stop = asyncio.Event()
    background = asyncio.gather(_scrape_times(url, stop), _trickle([w for _, w in conns], stop))
    try:
        held = await _settled_fds(exp, timeout=0.5)
        closed = await asyncio.gather(*(_closed_within(r, 4.0, opened) for r, _ in conns))
        after = await _settled_fds(exp, want=baseline)
    finally:
        stop.set()
        times, _ = await background
        for _, writer in conns:
            writer.close()
    assert held >= baseline + 90  # they were accepted, and held
    assert None not in closed, f"{closed.count(None)} of 100 connections still open after 4 s"
    assert after <= baseline
    median_close = statistics.median(c for c in closed if c is not None)
    assert 0.9 < median_close < 3.0  # 1 s header timeout; trickling does not extend it
    assert max(times) < 1.0
    assert value(before, OPEN) == 1 and value(before, LIMIT) == 256  # present from the start
    assert _closes(before) == _only("header_timeout", 0)
    assert _closes(await _scrape(url)) == _only("header_timeout", 100)
    await _open_back_to_baseline(url)
    report(
        f"http slowloris: 100 connections closed a median {median_close:.2f} s after accept"
        f" (header timeout 1 s); exporter fds {baseline} -> {held} -> {after};"
        f" /metrics meanwhile median {statistics.median(times) * 1000:.1f} ms,"
        f" max {max(times) * 1000:.1f} ms over {len(times)} scrapes"
    )


def _tls_web_config(directory: Path) -> tuple[Path, ssl.SSLContext]:
    cert, key = self_signed_cert(directory)
    web = directory / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    return web, ssl.create_default_context(cafile=str(cert))


async def test_tls_slowloris_is_closed_after_the_header_timeout(
    exporter_process: Process, tmp_path: Path
) -> None:
    """Connections that never start their TLS handshake, and ones that finish it and then
    trickle their headers: both closed once the header timeout has passed since accept."""
    web, client_ctx = _tls_web_config(tmp_path / "tls")
    exp = exporter_process("--web-config", str(web), "--header-timeout", "1s", https=True)
    baseline = await _settled_fds(exp)
    opened = time.monotonic()
    conns = [await asyncio.open_connection("127.0.0.1", exp.port) for _ in range(20)]
    handshaken = [
        await asyncio.open_connection("127.0.0.1", exp.port, ssl=client_ctx) for _ in range(20)
    ]
    for _, writer in handshaken:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    conns += handshaken
    stop = asyncio.Event()
    background = asyncio.gather(
        _scrape_times(f"https://{exp.address}", stop, client_ctx),
        _trickle([w for _, w in handshaken], stop),
    )
    try:
        held = await _settled_fds(exp, timeout=0.5)
        closed = await asyncio.gather(*(_closed_within(r, 4.0, opened) for r, _ in conns))
        after = await _settled_fds(exp, want=baseline)
    finally:
        stop.set()
        times, _ = await background
        for _, writer in conns:
            writer.close()
    assert held >= baseline + 36
    assert None not in closed, f"{closed.count(None)} of 40 TLS connections still open after 4 s"
    assert after <= baseline
    assert times and max(times) < 1.0  # HTTPS scrapes kept working meanwhile
    m = await _scrape_tls(f"https://{exp.address}", client_ctx)
    assert _closes(m) == _only("header_timeout", 40)
    assert value(m, OPEN) == 1


async def _scrape_tls(url: str, ctx: ssl.SSLContext) -> Series:
    connector = aiohttp.TCPConnector(ssl=ctx)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url + "/metrics") as resp,
    ):
        return parse(await resp.text())


async def test_idle_keepalive_connections_are_closed_after_the_idle_timeout(
    exporter_process: Process,
) -> None:
    exp = exporter_process("--idle-timeout", "2s", "--header-timeout", "5s")
    baseline = await _settled_fds(exp)
    reader, writer = await asyncio.open_connection("127.0.0.1", exp.port)
    try:
        writer.write(REQUEST)
        assert (await _read_response(reader))[0] == 200
        await asyncio.sleep(0.5)  # idle, but well under the idle timeout: kept alive
        writer.write(REQUEST)
        assert (await _read_response(reader))[0] == 200
        closed = await _closed_within(reader, 6.0)
        assert closed is not None, "an idle keep-alive connection still open 6 s on"
        assert 1.0 < closed < 5.0  # 2 s idle timeout
        assert await _settled_fds(exp, want=baseline) <= baseline
    finally:
        writer.close()
    assert _closes(await _scrape(f"http://{exp.address}")) == _only("idle_timeout", 1)
    await _open_back_to_baseline(f"http://{exp.address}")


async def test_the_connection_cap_holds_and_frees(exporter_process: Process) -> None:
    exp = exporter_process("--max-connections", "20", "--header-timeout", "30s")
    url = f"http://{exp.address}"
    baseline = await _settled_fds(exp)
    full = [await asyncio.open_connection("127.0.0.1", exp.port) for _ in range(20)]
    try:
        await eventually(lambda: _true(_fds(exp) >= baseline + 20))
        reader, writer = await asyncio.open_connection("127.0.0.1", exp.port)
        writer.write(REQUEST)
        start = time.monotonic()
        with contextlib.suppress(ConnectionError):
            answer = await asyncio.wait_for(reader.read(65536), 3.0)
            assert answer == b"", f"the 21st connection was served: {answer[:40]!r}"
        assert time.monotonic() - start < 1.0  # closed at once, not left to time out
        writer.close()
        flood = [await asyncio.open_connection("127.0.0.1", exp.port) for _ in range(100)]
        assert await _settled_fds(exp, timeout=0.5) <= baseline + 20 + 2
        for _, w in flood:
            w.close()
    finally:
        for _, w in full:
            w.close()
    await eventually(lambda: _true(_fds(exp) <= baseline))
    m = await _scrape(url)
    assert _closes(m) == _only("limit", 101)  # the 21st and the flood of 100
    assert value(m, LIMIT) == 20
    await _open_back_to_baseline(url)
    log = exp.log_path.read_text()
    assert log.count("HTTP connection limit reached") == 1
    assert log.count("HTTP connections below the limit again") == 1
    assert "max_connections=20" in log


async def _true(condition: bool) -> bool:
    return condition


async def test_a_client_that_stops_reading_is_closed_after_the_idle_timeout(
    exporter_process: Process,
) -> None:
    """Thousands of pipelined scrapes whose answers are never read: the server's writing
    stays paused; the connection (and the answers buffered for it) goes after the idle
    timeout."""
    exp = exporter_process("--idle-timeout", "1s")
    baseline = await _settled_fds(exp)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", exp.port))
    _, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(REQUEST * 6000)  # about 12 MB of answers
        await eventually(lambda: _true(_fds(exp) >= baseline + 1))
        start = time.monotonic()
        await eventually(lambda: _true(_fds(exp) <= baseline), timeout=5.0)
        elapsed = time.monotonic() - start
    finally:
        writer.transport.abort()
    assert elapsed < 4.0
    assert _closes(await _scrape(f"http://{exp.address}")) == _only("not_reading", 1)
    await _open_back_to_baseline(f"http://{exp.address}")


@contextlib.asynccontextmanager
async def _in_process(tmp_path: Path, limits: HTTPLimits) -> AsyncIterator[tuple[str, App]]:
    """An exporter without targets served by ``start_http`` in this process: its
    address and the exporter."""
    path = tmp_path / "in-process.yml"
    path.write_text("")
    app = App(str(path))
    await app.start(cfg.load(path))
    runner, site = await start_http(build_app(app), "127.0.0.1", 0, limits)
    try:
        yield f"127.0.0.1:{site.port}", app
    finally:
        await runner.cleanup()
        await app.stop()


async def test_keepalive_between_requests_is_idle_time_not_header_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After a response the header timeout waits for the next request's first byte: a
    connection idle past the header timeout (under the idle timeout) is still served; a
    second request that trickles is closed a header timeout after its first byte, counted
    and logged (debug) once with its peer."""
    caplog.set_level(logging.DEBUG, logger="exporter")
    async with _in_process(tmp_path, HTTPLimits(0.5, 3.0, 10)) as (address, _):
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        slow_reader, slow_writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(REQUEST)
            slow_writer.write(REQUEST)
            assert (await _read_response(reader))[0] == 200
            assert (await _read_response(slow_reader))[0] == 200
            await asyncio.sleep(1.0)  # twice the header timeout, idle
            writer.write(REQUEST)
            assert (await _read_response(reader))[0] == 200
            slow_writer.write(b"GET /metrics HTTP/1.1\r\n")
            stop = asyncio.Event()
            trickle = asyncio.create_task(_trickle([slow_writer], stop))
            closed = await _closed_within(slow_reader, 2.5)
            stop.set()
            await trickle
            assert closed is not None and 0.3 < closed < 1.5
            writer.close()
            assert _closes(await _scrape(f"http://{address}")) == _only("header_timeout", 1)
            lines = [r for r in caplog.records if r.getMessage() == "closing an HTTP connection"]
            assert [r.fields["why"] for r in lines] == ["header_timeout"]  # type: ignore[attr-defined]
            assert lines[0].fields["peer"].startswith("('127.0.0.1', ")  # type: ignore[attr-defined]
        finally:
            writer.close()
            slow_writer.close()


async def test_connection_series_are_there_from_the_start_and_stored_on_change(
    tmp_path: Path,
) -> None:
    """The first scrape shows the cap and every ``why`` at 0; a scrape that changes none
    of the values (the same keep-alive connection) stores nothing new, so the cached
    /metrics body stays valid; another open connection does."""
    async with (
        _in_process(tmp_path, HTTPLimits(1.0, 3.0, 7)) as (address, app),
        aiohttp.ClientSession() as session,
    ):
        url = f"http://{address}/metrics"
        async with session.get(url) as resp:
            first = parse(await resp.text())
        stored = app.store.get("", "http")
        async with session.get(url) as resp:
            assert parse(await resp.text()) == first
        assert app.store.get("", "http") is stored
        _, idle = await asyncio.open_connection(*address.split(":"))
        try:
            async with session.get(url) as resp:
                second = parse(await resp.text())
        finally:
            idle.close()
    assert value(first, OPEN) == 1 and value(first, LIMIT) == 7
    assert _closes(first) == _only("limit", 0)
    assert value(second, OPEN) == 2


MODULES = r"""
modules:
  redis_local:
    kind: redis
    allowed_targets: ['127\.0\.0\.1:\d+']
    timeout: 5s
"""


async def _timed_probe(
    client: TestClient[web.Request, web.Application], target: str, header: str
) -> tuple[float, int, str]:
    start = time.perf_counter()
    async with client.get(
        f"/probe?module=redis_local&target={target}",
        headers={"X-Prometheus-Scrape-Timeout-Seconds": header},
    ) as resp:
        text = await resp.text()
    return time.perf_counter() - start, resp.status, text


async def test_probe_waiting_for_a_slot_answers_within_its_scrape_timeout(
    exporter_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Every probe slot is taken by a probe of a peer that never answers; a request with
    a shorter scrape timeout waits for a slot, and answers in time with the probe timed out."""
    caplog.set_level(logging.INFO, logger="exporter")
    run = await exporter_client(MODULES)
    async with hostile_peer("silent") as peer:
        busy = [asyncio.create_task(_timed_probe(run.http, peer.address, "2.5")) for _ in range(16)]
        await eventually(lambda: _true(peer.connections >= 16))
        elapsed, status, text = await _timed_probe(run.http, peer.address, "1.2")
        done = await asyncio.gather(*busy)
    assert status == 200
    assert value(parse(text), "tradeops_probe_success", kind="redis", target=peer.address) == 0
    duration = value(
        parse(text), "tradeops_probe_duration_seconds", kind="redis", target=peer.address
    )
    assert duration is not None and 0.5 < duration < 1.2
    assert 0.5 < elapsed < 1.2  # 1.2 s header minus the 0.5 s margin; before: 2.0 s wait + 0.7 s
    assert all(s == 200 for _, s, _ in done)
    lines = [r for r in caplog.records if r.getMessage() == "on-demand probe failed"]
    waited = [r for r in lines if "probe slot" in r.fields["error"]]  # type: ignore[attr-defined]
    assert len(waited) == 1 and waited[0].fields["reason"] == "timeout"  # type: ignore[attr-defined]
    report(f"http /probe queued behind 16 hung probes: answered in {elapsed:.2f} s (header 1.2 s)")


async def test_probe_with_a_scrape_timeout_under_twice_the_margin(
    exporter_client: ClientFactory,
) -> None:
    """A 0.4 s scrape timeout leaves no room for the 0.5 s margin: half of it is the run's."""
    run = await exporter_client(MODULES)
    async with hostile_peer("silent") as peer:
        elapsed, status, text = await _timed_probe(run.http, peer.address, "0.4")
    assert status == 200
    assert value(parse(text), "tradeops_probe_success", kind="redis", target=peer.address) == 0
    assert elapsed < 0.4  # before: the module's 5 s


async def test_a_probe_whose_client_hangs_up_stops(exporter_process: Process) -> None:
    """The scraper gave up (its own timeout): the run is cancelled and its slot freed,
    rather than probing on for the module's whole timeout."""
    exp = exporter_process(config_text=MODULES.replace("timeout: 5s", "timeout: 3s"))
    url = f"http://{exp.address}"

    async def counted() -> bool:
        async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
            m = parse(await resp.text())
        requests = "tradeops_exporter_probe_requests_total"
        return value(m, requests, module="redis_local", outcome="failed") == 1

    async with hostile_peer("silent") as peer:
        _, writer = await asyncio.open_connection("127.0.0.1", exp.port)
        writer.write(f"GET /probe?module=redis_local&target={peer.address} HTTP/1.1\r\n".encode())
        writer.write(b"Host: exporter\r\n\r\n")
        await eventually(lambda: _true(peer.connections >= 1))
        start = time.monotonic()
        writer.transport.abort()
        await eventually(counted, timeout=5.0)
        stopped = time.monotonic() - start
        await eventually(lambda: _true(not peer._writers))  # the probe's connection closed
    assert stopped < 1.5  # before: the module's 3 s


class _Flood:
    """A fake Redis (no real server announces two billion elements): answers every
    connection's first request with ``*2000000000`` and then ``:1`` elements without end,
    as fast as the client reads. Each connection keeps the exporter's probe loop parsing."""

    def __init__(self) -> None:
        self.connections = 0
        self.sent = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> _Flood:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        elements = b":1\r\n" * 16384
        try:
            await reader.read(65536)
            writer.write(b"*2000000000\r\n")
            while not writer.is_closing():
                writer.write(elements)
                await writer.drain()
                self.sent += len(elements)
        except ConnectionError:
            pass
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()


FLOODS = 6


def _flood_config(flood: str, healthy: str) -> str:
    floods = "".join(
        f"  - {{name: flood-{i}, address: '{flood}', interval: 500ms, timeout: 450ms,"
        " response_budget: 1GiB}\n"
        for i in range(FLOODS)
    )
    return (
        f"redis:\n{floods}"
        f"  - {{name: healthy, address: '{healthy}', interval: 500ms, timeout: 450ms}}\n" + MODULES
    )


def _scrape_for(url: str, seconds: float, pause: float) -> list[float]:
    """Seconds per GET of ``url`` (a new connection each), for ``seconds``."""
    times: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=5) as resp:
            resp.read()
        times.append(time.perf_counter() - start)
        time.sleep(pause)
    return times


def _p99(xs: Sequence[float]) -> float:
    return sorted(xs)[max(0, -(-len(xs) * 99 // 100) - 1)]


async def _under_load(session: aiohttp.ClientSession, url: str, redis: str) -> None:
    """/probe, /-/reload, /-/ready and the index, each answered by the probe loop."""
    query = f"/probe?module=redis_local&target={redis}"
    async with session.get(url + query) as resp:
        m = parse(await resp.text())
    assert value(m, "tradeops_probe_success", kind="redis", target=redis) == 1
    async with session.post(url + "/-/reload") as resp:
        assert (resp.status, await resp.text()) == (200, "config reloaded\n")
    async with session.get(url + "/-/ready") as resp:
        assert resp.status == 200
    async with session.get(url + "/") as resp:
        assert "<td>redis</td><td>flood-0</td>" in await resp.text()


async def test_metrics_answers_while_floods_keep_the_probe_loop_busy(
    exporter_process: Process, redis_server: Redis
) -> None:
    """Six targets flood the exporter with tiny reply elements, parsed on the probe loop
    slice by slice all the time; /metrics, served from its own thread, answers within
    milliseconds regardless (before: median 26-31 ms, p99 74-81 ms here), a healthy
    target on the same exporter stays up, and what runs on the probe loop (/probe,
    /-/reload, /-/ready, the index) still answers."""
    async with _Flood() as flood:
        exp = exporter_process(config_text=_flood_config(flood.address, redis_server.address))
        url = f"http://{exp.address}"
        await eventually(lambda: _true(flood.connections >= FLOODS and flood.sent > 10 << 20))
        times = await asyncio.to_thread(_scrape_for, url + "/metrics", 4.0, 0.01)
        async with aiohttp.ClientSession() as session:
            await _under_load(session, url, redis_server.address)
        m = await _scrape(url)
    median, p99 = statistics.median(times), _p99(times)
    report(
        f"http /metrics while {FLOODS} floods keep the probe loop busy: median"
        f" {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {max(times) * 1000:.1f} ms"
        f" ({len(times)} scrapes; {flood.sent >> 20} MiB of elements parsed)"
    )
    for i in range(FLOODS):
        errors = with_label(m, "tradeops_probe_errors_total", kind="redis", target=f"flood-{i}")
        assert sum(errors.values()) >= 2  # the floods were probed (and failed) all along
    assert value(m, "tradeops_up", kind="redis", target="healthy") == 1
    assert median < 0.012, f"/metrics median {median * 1000:.0f} ms"
    assert p99 < 0.05, f"/metrics p99 {p99 * 1000:.0f} ms"


async def test_sigterm_stops_both_loops_promptly_under_load(
    exporter_process: Process, redis_server: Redis
) -> None:
    """SIGTERM while the floods keep the probe loop busy, an on-demand probe of a silent
    peer is under way and a keep-alive connection is open: exit 0 within the shutdown
    deadline (4 s), nothing left behind to complain about."""
    async with _Flood() as flood, hostile_peer("silent") as silent:
        exp = exporter_process(config_text=_flood_config(flood.address, redis_server.address))
        assert exp.proc is not None
        await eventually(lambda: _true(flood.connections >= FLOODS))
        reader, writer = await asyncio.open_connection("127.0.0.1", exp.port)
        writer.write(REQUEST)
        await _read_response(reader)  # kept alive
        _, probing = await asyncio.open_connection("127.0.0.1", exp.port)
        probing.write(
            f"GET /probe?module=redis_local&target={silent.address} HTTP/1.1\r\n".encode()
        )
        probing.write(b"Host: exporter\r\n\r\n")
        await eventually(lambda: _true(silent.connections >= 1))
        start = time.monotonic()
        exp.proc.terminate()
        code = await asyncio.to_thread(exp.proc.wait, 10)
        elapsed = time.monotonic() - start
        writer.close()
        probing.close()
    report(f"http SIGTERM under load: exit {code} after {elapsed:.2f} s")
    assert code == 0
    assert elapsed < 4.0
    log = exp.log_path.read_text()
    assert "msg=stopped" in log
    for complaint in (
        "shutdown deadline passed",
        "Task was destroyed",
        "was never awaited",
        "Exception in callback",
        "Traceback",
        "exception was never retrieved",
    ):
        assert complaint not in log, log[-2000:]
