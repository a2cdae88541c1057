"""The running exporter over HTTP: what /probe costs /metrics, the index page's view
of the scheduler, the body sent in chunks. A fake kind (tests/fake_kind.py) stands in
where only it can force the path: a probe emitting a family its kind did not declare."""

from __future__ import annotations

import gzip
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from exporter.app import Exporter
from exporter.catalogue import core as C
from exporter.config import Config, ModuleConfig
from exporter.kinds import KINDS
from exporter.probe import Sample
from exporter.render import render
from exporter.server import build_app
from exporter.snapshot import TargetSnapshot

from .fake_kind import UNDECLARED, FakeTarget, fake_kind
from .helpers import Running, parse, value


@pytest.fixture
async def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    """An exporter with /probe modules of the fake kind (no config file can name it,
    so the config is built here) and 20 large snapshots in its store (6.8 MB)."""
    monkeypatch.setitem(KINDS, "fake", fake_kind())
    modules = {
        name: ModuleConfig(kind="fake", allowed_targets=[r"fake:\d+"], params=params)
        for name, params in (("fake", {}), ("stray", {"stray": True}))
    }
    config = Config(str(tmp_path / "config.yml"), {}, modules)
    exporter = Exporter(config.path)
    await exporter.start(config)
    for t in range(20):
        samples = [Sample(C.PROBE_DURATION, ("redis", f"t{t}-{i}"), float(i)) for i in range(5000)]
        exporter.store.put(TargetSnapshot("redis", f"t{t}", render(samples)))
    server = TestServer(build_app(exporter), host="127.0.0.1")
    await server.start_server()
    running = Running(exporter, server, aiohttp.ClientSession())
    yield running
    await running.stop()


async def _both(run: Running) -> tuple[bytes, bytes]:
    identity = {"Accept-Encoding": "identity"}
    async with run.session.get(run.server.make_url("/metrics"), headers=identity) as resp:
        assert "Content-Encoding" not in resp.headers
        plain = await resp.read()
    headers = {"Accept-Encoding": "gzip"}
    async with run.session.get(
        run.server.make_url("/metrics"), headers=headers, auto_decompress=False
    ) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        zipped = await resp.read()
        assert int(resp.headers["Content-Length"]) == len(zipped)
    return plain, zipped


async def test_a_probe_request_does_not_rebuild_the_targets_part_of_metrics(run: Running) -> None:
    """Before, each /probe (its counter is an exporter series) made the next scrape
    re-encode and re-gzip the whole body; now only the exporter's own section is."""
    store = run.exporter.store
    plain, zipped = await _both(run)
    assert gzip.decompress(zipped) == plain and len(plain) > 6_000_000
    for n in range(1, 4):
        before = (store.stats.encoded_bytes, store.stats.deflated_bytes)
        status, text, _ = await run.get("/probe?module=fake&target=fake:1")
        assert status == 200, text
        plain, zipped = await _both(run)
        spent = (store.stats.encoded_bytes - before[0], store.stats.deflated_bytes - before[1])
        assert 0 < spent[0] < 2_000 and 0 < spent[1] < 2_000, spent  # the section only
        assert gzip.decompress(zipped) == plain
        counted = value(parse(plain.decode()), C.PROBE_REQUESTS.name, module="fake", outcome="ok")
        assert counted == n


async def test_a_probe_emitting_an_undeclared_family_fails_and_serves_none_of_it(
    run: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter")
    status, text, _ = await run.get("/probe?module=stray&target=fake:1")
    assert status == 200
    m = parse(text)
    assert value(m, "tradeops_probe_success", kind="fake", target="fake:1") == 0
    assert {name for name, _ in m} == {"tradeops_probe_success", "tradeops_probe_duration_seconds"}
    [line] = [r for r in caplog.records if r.getMessage() == "on-demand probe failed"]
    assert line.fields["reason"] == "other"  # type: ignore[attr-defined]
    assert UNDECLARED.name in line.fields["error"]  # type: ignore[attr-defined]


async def test_metrics_is_sent_in_chunks_as_the_store_holds_it(run: Running) -> None:
    store = run.exporter.store
    plain, zipped = await _both(run)
    assert plain == store.body() and zipped == store.gzip_body()
    assert len(store.exposition().chunks) > 1
    identity = {"Accept-Encoding": "identity"}
    async with run.session.head(run.server.make_url("/metrics"), headers=identity) as resp:
        assert resp.status == 200
        assert int(resp.headers["Content-Length"]) == len(plain)
        assert await resp.read() == b""


async def test_the_index_reads_the_scheduler_s_view(
    run: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets = tuple(
        FakeTarget(name=name, interval=60.0, timeout=1.0, stray=stray)
        for name, stray in (("b", False), ("a", True), ("c", False))
    )
    await run.exporter.scheduler.apply(Config("fake.yml", {"fake": targets}, {}))
    for key in (("fake", "b"), ("fake", "a")):
        await run.exporter.scheduler.runners[key].run_once()
    status, page, headers = await run.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    rows = [
        "<tr><td>fake</td><td>b</td><td>up</td><td>60s</td></tr>",
        "<tr><td>fake</td><td>a</td><td>other</td><td>60s</td></tr>",
        "<tr><td>fake</td><td>c</td><td>-</td><td>60s</td></tr>",
    ]
    assert "".join(rows) in page
    assert "<li>fake (fake)</li>" in page
