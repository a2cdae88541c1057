"""Rendering of samples into exposition text and the cached body."""

from __future__ import annotations

import gzip
import math
import statistics
import threading
import time

from exporter.catalogue import core as C
from exporter.catalogue import family
from exporter.probe import HistogramSample, Sample
from exporter.render import format_value, render
from exporter.snapshot import SnapshotStore, TargetSnapshot

from .helpers import parse, value

HIST = family("test_latency_seconds", "histogram", "Test latency.", "target", buckets=(0.01, 0.1))


def test_format_value() -> None:
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(1795403052.899676) == "1795403052.899676"
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(1e300) == "1e+300"


def test_label_values_are_escaped_and_parse_back() -> None:
    nasty = 'a "quoted"\\back\nslash'
    text = C.UP.header + render([Sample(C.UP, ("redis", nasty), 1.0)])[C.UP.name]
    assert value(parse(text), "tradeops_up", kind="redis", target=nasty) == 1


def test_duplicate_label_sets_keep_the_last_value() -> None:
    out = render([Sample(C.UP, ("redis", "a"), 1.0), Sample(C.UP, ("redis", "a"), 0.0)])
    assert out[C.UP.name] == 'tradeops_up{kind="redis",target="a"} 0\n'


def test_histogram_renders_buckets_sum_and_count() -> None:
    s = HistogramSample(HIST, ("t",), (1, 3), 0.2, 4)
    series = parse(HIST.header + render([s])[HIST.name])
    assert value(series, "tradeops_test_latency_seconds_bucket", target="t", le="0.01") == 1
    assert value(series, "tradeops_test_latency_seconds_bucket", target="t", le="0.1") == 3
    assert value(series, "tradeops_test_latency_seconds_bucket", target="t", le="+Inf") == 4
    assert value(series, "tradeops_test_latency_seconds_count", target="t") == 4
    assert value(series, "tradeops_test_latency_seconds_sum", target="t") == 0.2


def _snap(target: str, up: float) -> TargetSnapshot:
    samples = [
        Sample(C.UP, ("redis", target), up),
        Sample(C.PROBE_DURATION, ("redis", target), 0.5),
    ]
    return TargetSnapshot("redis", target, render(samples))


def test_store_groups_each_family_once_across_targets() -> None:
    store = SnapshotStore()
    store.put(_snap("b", 0))
    store.put(_snap("a", 1))
    text = store.body().decode()
    assert text.count("# TYPE tradeops_up gauge") == 1
    assert text.count("# TYPE tradeops_probe_duration_seconds gauge") == 1
    series = parse(text)  # the parser rejects a family split in two
    assert value(series, "tradeops_up", kind="redis", target="a") == 1
    assert value(series, "tradeops_up", kind="redis", target="b") == 0


def test_store_body_is_cached_until_a_snapshot_changes() -> None:
    store = SnapshotStore()
    store.put(_snap("a", 1))
    first = store.body()
    assert store.body() is first
    assert gzip.decompress(store.gzip_body()) == first
    store.put(_snap("a", 0))
    assert store.body() is not first
    assert gzip.decompress(store.gzip_body()) == store.body()
    store.remove("redis", "a")
    assert store.body() == b""


def _big(target: str, up: float, streams: int) -> TargetSnapshot:
    samples = [Sample(C.UP, ("redis", target), up)] + [
        Sample(C.PROBE_DURATION, ("redis", f"{target}-{i}"), float(i)) for i in range(streams)
    ]
    return TargetSnapshot("redis", target, render(samples))


def test_a_put_does_not_wait_for_a_body_being_built() -> None:
    """The HTTP thread rebuilds and gzips ~6 MB over and over while the probe loop's
    thread puts: each put takes the store's lock for a dictionary update only, not for
    a rebuild (zlib lets go of the GIL, so a put waiting here waits for the lock;
    before, about a third of them waited 13-16 ms). Every body read meanwhile is whole,
    and the last one has the last puts."""
    store = SnapshotStore()
    for t in range(20):
        store.put(_big(f"t{t}", 1, 5000))
    done = threading.Event()
    bodies: list[tuple[int, int]] = []

    def scrape() -> None:
        while not done.is_set():
            zipped = store.gzip_body()
            body = store.body()
            bodies.append((len(gzip.decompress(zipped)), len(body)))

    reader = threading.Thread(target=scrape)
    reader.start()
    waits = []
    try:
        for n in range(200):
            start = time.perf_counter()
            store.put(_snap(f"small-{n % 5}", n % 2))
            waits.append(time.perf_counter() - start)
            time.sleep(0.002)
    finally:
        done.set()
        reader.join()
    assert len(bodies) >= 3  # rebuilt and compressed while the puts went on
    assert all(length > 6_000_000 for length, _ in bodies)
    final = parse(store.body().decode())
    for n in range(195, 200):
        assert value(final, "tradeops_up", kind="redis", target=f"small-{n % 5}") == n % 2
    slow = [w for w in waits if w > 0.005]
    assert len(slow) < len(waits) // 20, f"{len(slow)} of {len(waits)} puts waited over 5 ms"
    assert statistics.median(waits) < 0.001
