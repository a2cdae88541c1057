"""Event-bus probe, health endpoint: against the runtime stand-in and bad endpoints."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from exporter.kinds.eventbus.probe import EventBusState
from stack import free_port
from stack.sim_eventbus import EventBusSim

from ...fixtures_eventbus import make_certs, probe_once, sim, target_from
from ...helpers import Running, Series, eventually, scrape_until, value, with_label

__all__ = ["sim"]  # the fixture, imported for pytest

Factory = Callable[..., Any]
T = {"target": "runtime"}


def _yaml(url: str, extra: str = "", timeout: str = "1s", interval: str = "2s") -> str:
    return f"""
eventbus:
  - name: runtime
    url: "{url}"
    interval: {interval}
    timeout: {timeout}
{extra}
"""


async def _until_drained(s: EventBusSim) -> None:
    async def drained() -> bool:
        return s.queue.qsize() == 0 and s.handled + s.handler_errors == s.published

    await eventually(drained, timeout=5)


async def test_values_follow_the_stand_in_queue(sim: EventBusSim) -> None:
    target = target_from(_yaml(sim.url))
    state = EventBusState(target)
    try:
        sim.pause_handlers()
        assert sim.publish(7) == 0
        out = await probe_once(target, state)
        m = out.series
        assert out.reason is None, out.error
        assert value(m, "tradeops_eventbus_queue_depth", **T) == 7
        assert value(m, "tradeops_eventbus_queue_capacity", **T) == 10
        assert value(m, "tradeops_eventbus_published_events_total", **T) == 7
        assert value(m, "tradeops_eventbus_dropped_events_total", **T) == 0
        assert value(m, "tradeops_eventbus_subscribers", **T) == 2
        assert value(m, "tradeops_eventbus_running", **T) == 1
        assert value(m, "tradeops_eventbus_status", **T, status="warn") == 1
        assert value(m, "tradeops_eventbus_status", **T, status="ok") == 0
        assert value(m, "tradeops_eventbus_status", **T, status="unknown") == 0
        lag = value(m, "tradeops_eventbus_dispatch_lag_seconds", **T)
        assert lag is not None and lag > 0
        # nothing dispatched yet: the timestamp is absent, not 0
        assert value(m, "tradeops_eventbus_last_event_timestamp_seconds", **T) is None
        assert value(m, "tradeops_eventbus_field_present", **T, field="last_event") == 0
        assert value(m, "tradeops_eventbus_field_present", **T, field="queue_depth") == 1
        start = value(m, "tradeops_eventbus_start_time_seconds", **T)
        assert start is not None and abs(start - sim.started_at) <= 1

        assert sim.publish(5) == 2  # capacity 10: two are dropped by the real queue
        m = (await probe_once(target, state)).series
        assert value(m, "tradeops_eventbus_queue_depth", **T) == 10
        assert value(m, "tradeops_eventbus_dropped_events_total", **T) == 2
        assert value(m, "tradeops_eventbus_published_events_total", **T) == 10
        assert value(m, "tradeops_eventbus_status", **T, status="fail") == 1

        sim.resume_handlers()
        await _until_drained(sim)
        assert sim.publish(1, fail=True) == 0
        await _until_drained(sim)
        m = (await probe_once(target, state)).series
        assert value(m, "tradeops_eventbus_queue_depth", **T) == 0
        assert value(m, "tradeops_eventbus_dispatch_lag_seconds", **T) == 0
        assert value(m, "tradeops_eventbus_handler_errors_total", **T) == 1
        last = value(m, "tradeops_eventbus_last_event_timestamp_seconds", **T)
        assert last is not None and abs(last - time.time()) < 5
        err = value(m, "tradeops_eventbus_last_handler_error_timestamp_seconds", **T)
        assert err is not None and err <= last
    finally:
        await state.aclose()


async def test_degrade_switch_grows_backlog_and_drops(exporter_factory: Factory) -> None:
    s = await EventBusSim(rate=40, capacity=30, handlers=2).start()
    try:
        run: Running = await exporter_factory(_yaml(s.url, interval="300ms", timeout="250ms"))

        async def healthy() -> bool:
            m = await run.scrape()
            return value(m, "tradeops_eventbus_status", **T, status="ok") == 1

        await eventually(healthy, timeout=10)
        async with aiohttp.ClientSession() as http, http.post(s.url.replace("/health", "/degrade")):
            pass

        def degraded(m: Series) -> bool:
            depth = value(m, "tradeops_eventbus_queue_depth", **T)
            dropped = value(m, "tradeops_eventbus_dropped_events_total", **T) or 0
            return depth == 30 and dropped > 0

        m = await scrape_until(run, degraded, timeout=10)
        assert value(m, "tradeops_eventbus_status", **T, status="fail") == 1
        assert value(m, "tradeops_up", kind="eventbus", target="runtime") == 1
    finally:
        await s.stop()


async def test_custom_mapping_and_units(sim: EventBusSim) -> None:
    target = target_from(
        _yaml(
            sim.url,
            """
    mapping:
      handled: {path: metadata.handled_events, type: counter}
      degraded: {path: metadata.degraded, unit: bool}
      topic_handlers: {path: 'topic_subscribers["telemetry.*"]'}
      first_issue_missing: {path: "issues[0]"}
      running: null
""",
        )
    )
    state = EventBusState(target)
    try:
        sim.publish(3)
        await _until_drained(sim)
        m = (await probe_once(target, state)).series
        lbl = {"target": "runtime", "unit": "count"}
        assert value(m, "tradeops_eventbus_field_total", **lbl, field="handled") == 3
        assert value(m, "tradeops_eventbus_field", **lbl, field="topic_handlers") == 2
        assert value(m, "tradeops_eventbus_field", **T, field="degraded", unit="bool") == 0
        assert value(m, "tradeops_eventbus_field_present", **T, field="first_issue_missing") == 0
        assert with_label(m, "tradeops_eventbus_running") == {}
        assert value(m, "tradeops_eventbus_field_present", **T, field="running") is None
    finally:
        await state.aclose()


async def test_bearer_token_from_file(tmp_path: Path) -> None:
    s = await EventBusSim(rate=0, token="s3cret-token").start()
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    try:
        good = target_from(_yaml(s.url, f"    token_file: {token_file}"))
        bad = target_from(_yaml(s.url))
        for target, reason in ((good, None), (bad, "auth")):
            state = EventBusState(target)
            try:
                out = await probe_once(target, state)
                assert out.reason == reason, out.error
            finally:
                await state.aclose()
    finally:
        await s.stop()


# ------------------------------------------------------------------ bad endpoints


async def _serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.AppRunner:
    app = web.Application()
    app.router.add_get("/health", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


@pytest.fixture
async def endpoint() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Serve a handler on /health; yields a function returning the URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> str:
        runner = await _serve(handler)
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/health"

    yield start
    for r in runners:
        await r.cleanup()


def _snapshot(**override: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": "ok",
        "running": True,
        "queue_size": 1,
        "queue_capacity": None,
        "subscriber_count": 1,
        "published_events": 5,
        "dropped_events": 0,
        "handler_errors": 0,
    }
    doc.update(override)
    return {k: v for k, v in doc.items() if v is not ...}


async def _run(url: str, extra: str = "", timeout: str = "1s") -> Any:
    target = target_from(_yaml(url, extra, timeout=timeout))
    state = EventBusState(target)
    try:
        return await probe_once(target, state)
    finally:
        await state.aclose()


async def test_endpoint_down_is_refused() -> None:
    out = await _run(f"http://127.0.0.1:{free_port()}/health")
    assert out.reason == "refused"
    assert out.series == {}


async def test_hung_endpoint_times_out_and_metrics_stay_fast(exporter_factory: Factory) -> None:
    """A listener that accepts and never answers."""
    accepted: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        out = await _run(f"http://127.0.0.1:{port}/health", timeout="500ms")
        assert out.reason == "timeout"
        assert "health endpoint" in out.error
        assert 0.3 < out.duration < 1.5  # cut at the deadline, not by a client default
        run: Running = await exporter_factory(
            _yaml(f"http://127.0.0.1:{port}/health", interval="1s", timeout="400ms")
        )

        async def timed_out() -> bool:
            m = await run.scrape()
            errors = value(
                m,
                "tradeops_probe_errors_total",
                kind="eventbus",
                target="runtime",
                reason="timeout",
            )
            return (errors or 0) >= 1

        await eventually(timed_out, timeout=5)
        worst = 0.0
        for _ in range(10):
            start = time.perf_counter()
            m = await run.scrape()
            worst = max(worst, time.perf_counter() - start)
        assert worst < 0.25, f"/metrics took {worst:.3f}s while the endpoint hangs"
        assert value(m, "tradeops_up", kind="eventbus", target="runtime") == 0
        for w in accepted:
            w.close()


async def test_garbage_is_a_protocol_error(endpoint: Callable[..., Awaitable[str]]) -> None:
    async def not_json(_: web.Request) -> web.Response:
        return web.Response(body=b"\x00\xffOK all good", content_type="application/json")

    async def a_list(_: web.Request) -> web.Response:
        return web.json_response([1, 2, 3])

    async def too_deep(_: web.Request) -> web.Response:
        return web.Response(body=b"[" * 100_000, content_type="application/json")

    cases = ((not_json, "not JSON"), (a_list, "JSON list"), (too_deep, "nested too deeply"))
    for handler, text in cases:
        out = await _run(await endpoint(handler))
        assert out.reason == "protocol"
        assert text in out.error
        assert out.series == {}


async def test_not_http_at_all_is_a_protocol_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"\x00\xffNOT-HTTP garbage\r\n\r\n" * 4)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    async with server:
        out = await _run(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/health")
        assert out.reason == "protocol", out.error


async def test_too_large_response_stops_reading(endpoint: Callable[..., Awaitable[str]]) -> None:
    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        """Chunked, no Content-Length: the probe must stop reading by itself."""
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b'{"queue_size": 1, "padding": "')
        with_chunk = b"x" * 65536
        try:
            for _ in range(2000):  # 128 MiB if nobody stopped reading
                await resp.write(with_chunk)
                sent.append(len(with_chunk))
        except (ConnectionResetError, RuntimeError):
            pass
        return resp

    async def declared(_: web.Request) -> web.Response:
        return web.json_response(_snapshot(padding="y" * 5000))

    out = await _run(await endpoint(endless), "    max_response_bytes: 4096")
    assert out.reason == "protocol"
    assert "larger than 4096 bytes" in out.error
    assert sum(sent) < 64 * 1024 * 1024
    out = await _run(await endpoint(declared), "    max_response_bytes: 4096")
    assert out.reason == "protocol"
    assert "larger than 4096 bytes" in out.error


async def test_wrong_type_fails_the_run_and_logs_the_field(
    exporter_factory: Factory,
    endpoint: Callable[..., Awaitable[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def wrong(_: web.Request) -> web.Response:
        return web.json_response(_snapshot(queue_size="many"))

    url = await endpoint(wrong)
    out = await _run(url)
    assert out.reason == "protocol"
    assert "queue_depth at queue_size: expected a number, got string" in out.error
    assert out.series == {}
    caplog.set_level(logging.WARNING, logger="exporter")
    run: Running = await exporter_factory(_yaml(url, interval="1s", timeout="500ms"))

    async def protocol() -> bool:
        m = await run.scrape()
        errors = value(
            m, "tradeops_probe_errors_total", kind="eventbus", target="runtime", reason="protocol"
        )
        return (errors or 0) >= 1

    await eventually(protocol, timeout=5)
    assert any(
        "queue_depth at queue_size" in str(getattr(r, "fields", {}).get("error", ""))
        for r in caplog.records
    )
    assert with_label(await run.scrape(), "tradeops_eventbus_queue_depth") == {}


@pytest.mark.parametrize(
    ("doc", "reason", "text"),
    [
        (_snapshot(dropped_events=...), "protocol", "dropped_events at dropped_events: missing"),
        (_snapshot(handler_errors=None), "protocol", "handler_errors at handler_errors: missing"),
        (_snapshot(dropped_events=-1), "protocol", "a counter cannot be negative"),
        (_snapshot(running="yes"), "protocol", "running at running: expected a boolean"),
        (_snapshot(queue_size=True), "protocol", "expected a number, got boolean"),
        (_snapshot(status=2), "protocol", "status at status: expected a string"),
        (_snapshot(last_event_at="yesterday"), "protocol", "last_event at last_event_at"),
    ],
)
async def test_bad_fields(
    endpoint: Callable[..., Awaitable[str]], doc: dict[str, Any], reason: str, text: str
) -> None:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response(doc)

    out = await _run(await endpoint(handler))
    assert out.reason == reason
    assert text in out.error


async def test_optional_fields_absent_and_unknown_status(
    endpoint: Callable[..., Awaitable[str]], caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response(_snapshot(status="degraded", last_event_at=1_795_000_000_500))

    caplog.set_level(logging.WARNING, logger="exporter")
    out = await _run(await endpoint(handler))
    m = out.series
    assert out.reason is None, out.error
    assert value(m, "tradeops_eventbus_status", **T, status="unknown") == 1
    assert value(m, "tradeops_eventbus_status", **T, status="ok") == 0
    assert any("not among the configured states" in r.getMessage() for r in caplog.records)
    # null capacity (unbounded) and an absent lag: no series, present 0
    assert value(m, "tradeops_eventbus_queue_capacity", **T) is None
    assert value(m, "tradeops_eventbus_field_present", **T, field="queue_capacity") == 0
    assert value(m, "tradeops_eventbus_dispatch_lag_seconds", **T) is None
    # a millisecond Unix time is converted to seconds
    assert value(m, "tradeops_eventbus_last_event_timestamp_seconds", **T) == 1_795_000_000.5


async def test_root_path_and_503_body_is_read(endpoint: Callable[..., Awaitable[str]]) -> None:
    async def handler(_: web.Request) -> web.Response:
        body = {"checks": [{"name": "event_bus", "snapshot": _snapshot(status="fail")}]}
        return web.json_response(body, status=503)

    out = await _run(await endpoint(handler), '    root: "checks[0].snapshot"')
    assert out.reason is None, out.error
    assert value(out.series, "tradeops_eventbus_http_status_code", **T) == 503
    assert value(out.series, "tradeops_eventbus_status", **T, status="fail") == 1


async def test_https_with_private_ca(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    s = await EventBusSim(rate=0, ssl_context=certs.server_context()).start()
    try:
        trusted = await _run(s.url, f"    tls: {{ca_file: {certs.ca}}}")
        assert trusted.reason is None, trusted.error
        assert value(trusted.series, "tradeops_eventbus_running", **T) == 1
        untrusted = await _run(s.url)
        assert untrusted.reason == "protocol"
        assert "certificate" in untrusted.error.lower()
        # server_name: the certificate is checked against it, not the URL's host
        named = await _run(s.url, f"    tls: {{ca_file: {certs.ca}, server_name: bus.test}}")
        assert named.reason is None, named.error
        other = await _run(s.url, f"    tls: {{ca_file: {certs.ca}, server_name: other.test}}")
        assert other.reason == "protocol"
        assert "other.test" in other.error
    finally:
        await s.stop()
