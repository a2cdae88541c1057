"""HTTP endpoints of an in-process exporter, against a real redis-server.

The application's routes go through pytest-aiohttp's ``aiohttp_client``
(``tests.http_fixtures``); the HTTP thread and the probe loop it hands work to are
tested on a real thread (a ``TestClient`` serves on the test's own loop)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import itertools
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import ANY

import aiohttp
import bcrypt
import pytest

from exporter import config as cfg
from exporter.app import Exporter, ProbeRequestError
from exporter.server import HTTPLimits, HTTPThread, ProbeLoop, build_app
from exporter.webconfig import WebConfig
from stack import Redis
from stack.sim_eventbus import EventBusSim

from .helpers import eventually, parse, value, with_label
from .hostile import hostile_peer
from .http_fixtures import ClientFactory, exporter_client

__all__ = ["exporter_client"]  # the fixture, used by name

MODULES = r"""
modules:
  redis_local:
    kind: redis
    allowed_targets: ['127\.0\.0\.1:\d+']
    timeout: 5s
"""


def _target(
    server: Redis, name: str = "cache", timeout: str = "500ms", interval: str = "1s"
) -> str:
    return f"""
  - name: {name}
    address: {server.address}
    interval: {interval}
    timeout: {timeout}
"""


async def test_metrics_gzip_matches_plain(
    redis_server: Redis, exporter_client: ClientFactory
) -> None:
    # one run only: a second run between the two scrapes would change the body
    run = await exporter_client("redis:" + _target(redis_server, interval="60s"))
    await eventually(run.ran)
    async with run.http.get(
        "/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    ) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        zipped = await resp.read()
    async with run.http.get("/metrics", headers={"Accept-Encoding": "identity"}) as resp:
        assert "Content-Encoding" not in resp.headers
        plain = await resp.read()
    assert gzip.decompress(zipped) == plain
    assert value(parse(plain.decode()), "tradeops_up", kind="redis", target="cache") == 1


async def test_probe_endpoint_checks_module_and_allow_list(
    redis_server: Redis, exporter_client: ClientFactory
) -> None:
    run = await exporter_client(MODULES)
    status, text, _ = await run.get("/probe?module=nope&target=127.0.0.1:1")
    assert (status, text) == (400, "unknown module 'nope'\n")
    status, text, _ = await run.get("/probe?module=redis_local&target=10.0.0.1:6379")
    assert (status, text) == (403, "target not allowed by module 'redis_local'\n")
    status, text, _ = await run.get("/probe?module=redis_local")
    assert (status, text) == (400, "the target parameter is required\n")

    status, text, _ = await run.get(f"/probe?module=redis_local&target={redis_server.address}")
    assert status == 200
    m = parse(text)
    t = {"kind": "redis", "target": redis_server.address}
    assert value(m, "tradeops_probe_success", **t) == 1
    assert value(m, "tradeops_redis_role_primary", target=redis_server.address) == 1

    redis_server.stop()
    status, text, _ = await run.get(f"/probe?module=redis_local&target={redis_server.address}")
    m = parse(text)
    assert status == 200
    assert value(m, "tradeops_probe_success", **t) == 0
    assert with_label(m, "tradeops_redis_role_primary") == {}

    own = await run.scrape()
    requests = {
        (dict(lbl)["module"], dict(lbl)["outcome"]): v
        for lbl, v in with_label(own, "tradeops_exporter_probe_requests_total").items()
    }
    assert requests == {
        ("", "bad_request"): 1,
        ("redis_local", "bad_request"): 1,
        ("redis_local", "denied"): 1,
        ("redis_local", "ok"): 1,
        ("redis_local", "failed"): 1,
    }


async def test_probe_deadline_follows_the_scrape_timeout_header(
    redis_server: Redis, exporter_client: ClientFactory
) -> None:
    run = await exporter_client(MODULES)
    redis_server.pause()
    try:
        start = time.perf_counter()
        status, text, _ = await run.get(
            f"/probe?module=redis_local&target={redis_server.address}",
            headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"},
        )
        elapsed = time.perf_counter() - start
    finally:
        redis_server.resume()
    assert status == 200
    m = parse(text)
    assert value(m, "tradeops_probe_success", kind="redis", target=redis_server.address) == 0
    # 1.5 s scrape timeout minus the 0.5 s margin, well under the module's 5 s
    assert 0.9 < elapsed < 1.5


@pytest.mark.parametrize("header", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"])
async def test_probe_refuses_a_scrape_timeout_header_that_is_not_finite(
    exporter_client: ClientFactory, header: str
) -> None:
    run = await exporter_client(MODULES)
    status, text, _ = await run.get(
        "/probe?module=redis_local&target=127.0.0.1:1",
        headers={"X-Prometheus-Scrape-Timeout-Seconds": header},
    )
    assert (status, text) == (
        400,
        "bad X-Prometheus-Scrape-Timeout-Seconds header: expected a finite number of seconds\n",
    )
    requests = with_label(await run.scrape(), "tradeops_exporter_probe_requests_total")
    assert requests == {frozenset({("module", "redis_local"), ("outcome", "bad_request")}): 1}


async def test_probe_with_a_deadline_shorter_than_the_interval_floor(
    exporter_client: ClientFactory,
) -> None:
    """0.52 s minus the 0.5 s margin: a 20 ms run, although no target may run every 40 ms."""
    run = await exporter_client(MODULES)
    status, text, _ = await run.get(
        "/probe?module=redis_local&target=127.0.0.1:1",
        headers={"X-Prometheus-Scrape-Timeout-Seconds": "0.52"},
    )
    assert status == 200, text
    assert value(parse(text), "tradeops_probe_success", kind="redis", target="127.0.0.1:1") == 0


async def test_ready_waits_for_the_first_run(
    redis_server: Redis, exporter_client: ClientFactory
) -> None:
    redis_server.pause()
    try:
        run = await exporter_client("redis:" + _target(redis_server, timeout="700ms"))
        status, _, _ = await run.get("/-/ready")
        assert status == 503
        assert (await run.get("/-/healthy"))[0] == 200

        async def ready() -> bool:
            return (await run.get("/-/ready"))[0] == 200

        await eventually(ready, timeout=3)
    finally:
        redis_server.resume()


async def test_reload_applies_good_config_and_keeps_running_on_bad(
    redis_server: Redis, exporter_client: ClientFactory, tmp_path: Path
) -> None:
    run = await exporter_client("redis:" + _target(redis_server, "a"))
    await eventually(lambda: run.ran("a"))
    runner_a = run.exporter.scheduler.runners[("redis", "a")]
    config = Path(run.exporter.config_path)
    config.write_text("redis:" + _target(redis_server, "a") + _target(redis_server, "b"))
    status, text, _ = await run.get("/-/reload", method="POST")
    assert (status, text) == (200, "config reloaded\n")
    assert run.exporter.scheduler.runners[("redis", "a")] is runner_a  # unchanged: kept
    await eventually(lambda: run.ran("b"))

    config.write_text("redis:\n  - {name: b, address: nowhere}\n")
    async with run.http.post("/-/reload") as resp:
        assert resp.status == 500
        assert f"{config}: redis[0].address: expected host:port" in await resp.text()
    m = await run.scrape()
    assert value(m, "tradeops_exporter_config_last_reload_successful") == 0
    assert value(m, "tradeops_up", kind="redis", target="a") == 1

    config.write_text("redis:" + _target(redis_server, "b"))
    assert (await run.get("/-/reload", method="POST"))[0] == 200
    m = await run.scrape()
    assert value(m, "tradeops_exporter_config_last_reload_successful") == 1
    assert value(m, "tradeops_up", kind="redis", target="a") is None  # removed target: gone
    assert with_label(m, "tradeops_redis_ping_seconds", target="a") == {}


NO_TARGETS = {  # a file without targets, and the same saying so
    "empty": ("", "allow_empty: true\n"),
    "comment-only": ("# moved to exporter-2\n", "allow_empty: true  # moved to exporter-2\n"),
    "empty mapping": ("{}\n", "{allow_empty: true}\n"),
    "modules only": (MODULES, "allow_empty: true\n" + MODULES),
}


@pytest.mark.parametrize(("text", "explicit"), NO_TARGETS.values(), ids=NO_TARGETS.keys())
async def test_reload_that_would_remove_every_target_is_refused(
    exporter_client: ClientFactory, text: str, explicit: str
) -> None:
    run = await exporter_client(
        "redis:\n  - {name: a, address: '127.0.0.1:1'}\n  - {name: b, address: '127.0.0.1:2'}\n"
    )
    config = Path(run.exporter.config_path)
    config.write_text(text)
    status, body, _ = await run.get("/-/reload", method="POST")
    assert (status, body) == (
        500,
        f"{config}: no targets: this reload would remove every running target (2); if that is"
        " intended, say so with 'allow_empty: true' at the top level\n",
    )
    assert sorted(run.exporter.scheduler.runners) == [("redis", "a"), ("redis", "b")]
    m = await run.scrape()
    assert value(m, "tradeops_exporter_config_last_reload_successful") == 0

    config.write_text(explicit)
    assert await run.get("/-/reload", method="POST") == (200, "config reloaded\n", ANY)
    assert run.exporter.scheduler.runners == {}
    m = await run.scrape()
    assert value(m, "tradeops_exporter_config_last_reload_successful") == 1
    assert value(m, "tradeops_up", kind="redis", target="a") is None

    config.write_text(text)  # nothing left to remove: no need to say so again
    assert (await run.get("/-/reload", method="POST"))[0] == 200


async def test_index_lists_targets(redis_server: Redis, exporter_client: ClientFactory) -> None:
    run = await exporter_client("redis:" + _target(redis_server) + MODULES)
    await eventually(run.ran)
    status, text, headers = await run.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "<td>redis</td><td>cache</td><td>up</td>" in text
    assert "redis_local (redis)" in text


async def test_unknown_path_is_404(exporter_client: ClientFactory) -> None:
    run = await exporter_client("")
    assert (await run.get("/nope"))[0] == 404
    async with aiohttp.ClientSession() as s, s.get(run.http.make_url("/metrics")) as resp:
        m = parse(await resp.text())
    assert value(m, "tradeops_exporter_config_last_reload_successful") == 1


async def test_probe_accepts_a_url_target(exporter_client: ClientFactory) -> None:
    """A URL is a valid /probe target although it is no valid config name."""
    sim = EventBusSim("127.0.0.1")
    await sim.start()
    try:
        run = await exporter_client(r"""
modules:
  bus:
    kind: eventbus
    allowed_targets: ['http://127\.0\.0\.1:\d+/health']
""")
        status, text, _ = await run.get("/probe", params={"module": "bus", "target": sim.url})
        assert status == 200, text
        m = parse(text)
        assert value(m, "tradeops_probe_success", kind="eventbus", target=sim.url) == 1
        assert value(m, "tradeops_eventbus_queue_capacity", target=sim.url) is not None
    finally:
        await sim.stop()


def _basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


async def test_basic_auth_guards_every_route(exporter_client: ClientFactory) -> None:
    """Without valid credentials every route answers 401 with the challenge, and the
    request does nothing (a refused reload reloads nothing); with them, each is served."""
    hashed = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode()
    run = await exporter_client(MODULES, WebConfig(basic_auth_users={"prometheus": hashed}))
    routes = [("GET", "/"), ("GET", "/metrics"), ("GET", "/-/healthy"), ("GET", "/-/ready")]
    routes += [("GET", "/probe?module=redis_local&target=10.0.0.1:6379"), ("POST", "/-/reload")]
    refused = {
        "none": {},
        "wrong password": _basic("prometheus:wrong"),
        "unknown user": _basic("nobody:scrape-pass"),
        "not basic": {"Authorization": "Bearer scrape-pass"},
        "not base64": {"Authorization": "Basic %%%"},
    }
    reloaded = run.exporter.reload_time
    for (method, path), (why, auth) in itertools.product(routes, refused.items()):
        status, text, headers = await run.get(path, method, headers=auth)
        assert (status, text) == (401, "Unauthorized\n"), (path, why)
        assert headers["WWW-Authenticate"] == 'Basic realm="tradeops"'
    assert run.exporter.reload_time == reloaded
    assert run.exporter.probe_requests == {}
    auth = _basic("prometheus:scrape-pass")
    served = {path: (await run.get(path, method, headers=auth))[0] for method, path in routes}
    assert served == {path: 403 if path.startswith("/probe") else 200 for _, path in routes}
    assert run.exporter.reload_time != reloaded


@contextmanager
def _loop_in_a_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """Another event loop, running in a thread of its own (as the probe loop is to the
    HTTP thread)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def test_probe_loop_runs_the_work_on_its_loop() -> None:
    """The result and the exception come back; a cancelled caller cancels the work
    there, unless shielded (a reload), which runs to its end."""
    with _loop_in_a_thread() as other:
        probe_loop = ProbeLoop(other)

        async def where() -> asyncio.AbstractEventLoop:
            return asyncio.get_running_loop()

        async def bad() -> None:
            raise ProbeRequestError(403, "denied")

        assert await probe_loop.run(where()) is other
        assert await ProbeLoop().run(where()) is asyncio.get_running_loop()
        with pytest.raises(ProbeRequestError, match="denied"):
            await probe_loop.run(bad())

        started, cancelled, finished = threading.Event(), threading.Event(), threading.Event()

        async def work(seconds: float) -> int:
            started.set()
            try:
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            finished.set()
            return 1

        for shield in (False, True):
            for event in (started, cancelled, finished):
                event.clear()
            caller = asyncio.create_task(probe_loop.run(work(0.5), shield=shield))
            assert await asyncio.to_thread(started.wait, 5)
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
            ended, not_ended = (finished, cancelled) if shield else (cancelled, finished)
            assert await asyncio.to_thread(ended.wait, 5), f"shield={shield}"
            assert not not_ended.is_set(), f"shield={shield}"


async def test_http_thread_serves_and_stops(tmp_path: Path) -> None:
    """/metrics from the HTTP thread, the rest on this (the probe) loop; a second server
    on the same port fails to start with the listener's error; stopping ends each thread."""
    path = tmp_path / "config.yml"
    path.write_text(MODULES)
    exporter = Exporter(str(path))
    await exporter.start(cfg.load(path))
    threads = threading.active_count()
    app = build_app(exporter, None, ProbeLoop(asyncio.get_running_loop()))
    http = HTTPThread(app, "127.0.0.1", 0, HTTPLimits())
    try:
        site = await http.start()
        url = f"http://127.0.0.1:{site.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/metrics") as resp:
                m = parse(await resp.text())
            async with session.post(url + "/-/reload") as resp:
                assert (resp.status, await resp.text()) == (200, "config reloaded\n")
            for path_ in ("/-/healthy", "/-/ready", "/"):
                async with session.get(url + path_) as resp:
                    assert resp.status == 200, path_
        assert value(m, "tradeops_exporter_http_connections") == 1
        assert http.thread.is_alive() and threading.active_count() == threads + 1
        scrape = _InThread(lambda: _timed_get(url + "/metrics"))
        time.sleep(0.5)  # this loop, the probe loop, held: no turn for anything on it
        seconds, status = scrape.result()
        assert status == 200 and seconds < 0.4
        taken = HTTPThread(build_app(exporter), "127.0.0.1", site.port, HTTPLimits())
        with pytest.raises(OSError):
            await taken.start()
        await taken.stop()
        assert not taken.thread.is_alive()
    finally:
        await http.stop()
        await exporter.stop()
    assert not http.thread.is_alive()
    assert threading.active_count() == threads


class _InThread(threading.Thread):
    """Calls ``fn`` in a thread started at once; ``result()`` joins and returns it."""

    def __init__(self, fn: Callable[[], tuple[float, int]]) -> None:
        super().__init__()
        self._fn = fn
        self._result: tuple[float, int] | None = None
        self.start()

    def run(self) -> None:
        self._result = self._fn()

    def result(self) -> tuple[float, int]:
        self.join(10)
        assert self._result is not None
        return self._result


def _timed_get(url: str, **headers: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
        r.read()
        return time.perf_counter() - start, r.status


async def test_probe_deadline_counts_from_its_arrival_on_the_http_thread(
    tmp_path: Path,
) -> None:
    """A /probe that arrives while the probe loop is held 0.6 s: its 0.7 s run (1.2 s
    header minus the margin) counts from its arrival, so it answers in time."""
    path = tmp_path / "config.yml"
    path.write_text(MODULES)
    exporter = Exporter(str(path))
    await exporter.start(cfg.load(path))
    http = HTTPThread(
        build_app(exporter, None, ProbeLoop(asyncio.get_running_loop())),
        "127.0.0.1",
        0,
        HTTPLimits(),
    )
    try:
        port = (await http.start()).port
        async with hostile_peer("silent") as peer:
            url = f"http://127.0.0.1:{port}/probe?module=redis_local&target={peer.address}"
            request = _InThread(
                lambda: _timed_get(url, **{"X-Prometheus-Scrape-Timeout-Seconds": "1.2"})
            )
            time.sleep(0.6)  # the probe loop held as the request arrives
            seconds, status = await asyncio.to_thread(request.result)
    finally:
        await http.stop()
        await exporter.stop()
    assert status == 200
    assert 0.6 < seconds < 1.1  # before: the 0.6 s wait, then 0.7 s of probe
