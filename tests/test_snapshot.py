"""The store: rendered snapshots and sections laid out into the cached bodies."""

from __future__ import annotations

import gzip
import math
import random
import statistics
import threading
import time
import zlib

from exporter import kinds
from exporter.catalogue import calendar as CAL
from exporter.catalogue import core as C
from exporter.catalogue import family
from exporter.probe import HistogramSample, Sample
from exporter.render import format_value, render
from exporter.snapshot import SnapshotStore, TargetSnapshot, assemble

from .helpers import parse, value

HIST = family("test_latency_seconds", "histogram", "Test latency.", "target", buckets=(0.01, 0.1))
REDIS_UP = next(f for f in kinds.AREAS["redis"] if f.labels == ("target",))


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


def _reference(snapshots: list[TargetSnapshot]) -> bytes:
    """The body as one assembly of every snapshot in key order (sections as kind "")."""
    by_family: dict[str, list[str]] = {}
    for snap in sorted(snapshots, key=lambda s: (s.kind, s.target)):
        for name, text in snap.text.items():
            by_family.setdefault(name, []).append(text)
    return assemble(by_family).encode()


def _one_member(data: bytes) -> bytes:
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = reader.decompress(data)
    assert reader.eof and not reader.unused_data
    return out


def test_sections_and_targets_keep_the_catalogue_order() -> None:
    """The exporter's sections sit between the targets' families where the catalogue
    puts them (``exporter_targets`` before ``exporter_loop_restarts_total``, a target
    family, before ``exporter_probe_requests_total``), as one assembly would."""
    store = SnapshotStore()
    target = TargetSnapshot(
        "redis",
        "a",
        render(
            [
                Sample(C.UP, ("redis", "a"), 1.0),
                Sample(C.LOOP_RESTARTS, ("redis", "a"), 0.0),
                Sample(REDIS_UP, ("a",), 1.0),
            ]
        ),
    )
    sections = {
        "exporter": render(
            [
                Sample(C.BUILD_INFO, ("v", "b", "p"), 1.0),
                Sample(C.TARGETS, ("redis",), 1.0),
                Sample(C.PROBE_REQUESTS, ("m", "ok"), 2.0),
            ]
        ),
        "http": render([Sample(C.HTTP_CONNECTIONS, (), 1.0)]),
        "calendars": render([Sample(CAL.OPEN, ("always",), 1.0)]),
    }
    store.put(target)
    for name, text in sections.items():
        store.put_section(name, text)
    expected = _reference([target, *(TargetSnapshot("", n, t) for n, t in sections.items())])
    assert store.body() == expected
    assert _one_member(store.gzip_body()) == expected
    names = [line.split()[2] for line in expected.decode().splitlines() if line[:6] == "# TYPE"]
    order = [f.name for f in kinds.ALL]
    assert names == sorted(names, key=order.index)
    assert store.get("", "http") is not None and store.get("redis", "a") is target


def test_a_family_both_sides_have_is_served_under_one_header() -> None:
    store = SnapshotStore()
    store.put(TargetSnapshot("k", "t", render([Sample(C.TARGETS, ("x",), 1.0)])))
    store.put_section("exporter", render([Sample(C.TARGETS, ("y",), 2.0)]))
    series = parse(store.body().decode())
    assert value(series, "tradeops_exporter_targets", kind="x") == 1
    assert value(series, "tradeops_exporter_targets", kind="y") == 2
    assert _one_member(store.gzip_body()) == store.body()


def _costs(store: SnapshotStore) -> tuple[int, int]:
    return store.stats.encoded_bytes, store.stats.deflated_bytes


def test_a_section_change_leaves_the_targets_part_of_the_body_as_it_is() -> None:
    """What a /probe request does to the store (its counters are in the exporter's
    section): before, the next scrape re-encoded and re-gzipped the whole body; now
    only the section's bytes are, and the targets' pieces are sent as they were."""
    store = SnapshotStore()
    for t in range(20):
        store.put(_big(f"t{t}", 1, 5000))
    store.put_section("exporter", render([Sample(C.PROBE_REQUESTS, ("m", "ok"), 1.0)]))
    plain, zipped = store.exposition(), store.exposition(gzip=True)
    size = plain.length
    assert size > 6_000_000
    before = _costs(store)
    section = render([Sample(C.PROBE_REQUESTS, ("m", "ok"), 2.0)])
    store.put_section("exporter", section)
    after_plain, after_zipped = store.exposition(), store.exposition(gzip=True)
    spent = [a - b for a, b in zip(_costs(store), before, strict=True)]
    assert spent == [len(section[C.PROBE_REQUESTS.name])] * 2  # bytes encoded, compressed
    big = {id(c) for c in plain.chunks if len(c) > 100_000}
    assert big and big <= {id(c) for c in after_plain.chunks}
    assert zipped.length > 0 and after_zipped.length > 0
    assert _one_member(store.gzip_body()) == store.body()
    assert value(parse(store.body().decode()), C.PROBE_REQUESTS.name, module="m", outcome="ok") == 2


def test_one_target_changing_recompresses_about_its_own_share() -> None:
    store = SnapshotStore()
    for t in range(20):
        store.put(_big(f"t{t}", 1, 5000))
    store.gzip_body()
    before = _costs(store)
    changed = _big("t7", 0, 5000)
    store.put(changed)
    body = store.gzip_body()
    own = sum(len(t) for t in changed.text.values())
    encoded, deflated = (a - b for a, b in zip(_costs(store), before, strict=True))
    assert encoded == own
    assert own <= deflated < own + 2_000  # and the small runs it shares with others
    assert _one_member(body) == store.body()


def test_the_body_follows_any_sequence_of_changes() -> None:
    rng = random.Random(3)
    store = SnapshotStore()
    current: dict[tuple[str, str], TargetSnapshot] = {}
    for step in range(300):
        target = f"t{rng.randrange(6)}"
        action = rng.randrange(4)
        if action == 0:
            store.remove("redis", target)
            current.pop(("redis", target), None)
        elif action == 1:
            name = rng.choice(["exporter", "http", "calendars"])
            text = render([Sample(C.TARGETS, (f"{name}-{step}",), float(step))])
            store.put_section(name, text)
            current[("", name)] = TargetSnapshot("", name, text)
        else:
            snap = _big(target, step % 2, rng.choice([1, 3, 80]))
            store.put(snap)
            current[("redis", target)] = snap
        if rng.random() < 0.5:
            assert store.body() == _reference(list(current.values())), step
        if rng.random() < 0.3:
            assert _one_member(store.gzip_body()) == store.body(), step
