"""Properties of the exposition renderer: any label value a Python string can hold and
any float come back unchanged through the reference parser, and a body built from
many generated samples passes ``promtool check metrics``.

Label values that UTF-8 cannot carry (lone surrogates, which ``surrogateescape``
decoding of file names and peer bytes produces) come back as U+FFFD; a value that
collides with another once replaced is one series, not two. Whatever sequence of
changes the store saw, its bodies are one assembly of what is current.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import zlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from exporter import kinds
from exporter.catalogue import Family
from exporter.catalogue import core as C
from exporter.probe import HistogramSample, Sample
from exporter.render import format_value, render
from exporter.snapshot import SnapshotStore, TargetSnapshot, assemble

from .helpers import parse
from .properties import examples

SCALARS = [f for f in kinds.ALL if f.type != "histogram"]
HISTOGRAMS = [f for f in kinds.ALL if f.type == "histogram"]
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)

label_values = st.one_of(
    st.text(),
    st.text(st.sampled_from('\\"\n\r\t\x00 {}=,#\u2028\ufeff\U0001f600')),
    st.text(st.one_of(st.characters(), SURROGATES)),
)
floats = st.one_of(
    st.floats(),
    st.sampled_from([0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1e15, 1e16, 2.0**53 + 1]),
    st.integers(-(2**63), 2**63).map(float),
)


def _utf8(value: str) -> str:
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@st.composite
def samples(draw: st.DrawFn, families: list[Family] = SCALARS) -> Sample:
    """A sample of a real catalogue family with any label values and value."""
    fam = draw(st.sampled_from(families))
    labels = tuple(draw(label_values) for _ in fam.labels)
    return Sample(fam, labels, draw(floats))


@st.composite
def histograms(draw: st.DrawFn) -> HistogramSample:
    """A histogram series of a real family: counts that only grow, any sum."""
    fam = draw(st.sampled_from(HISTOGRAMS))
    labels = tuple(draw(label_values) for _ in fam.labels)
    steps = draw(st.lists(st.integers(0, 2**40), min_size=len(fam.buckets) + 1,
                          max_size=len(fam.buckets) + 1))  # fmt: skip
    cumulative = [sum(steps[: i + 1]) for i in range(len(fam.buckets))]
    return HistogramSample(fam, labels, tuple(cumulative), draw(floats), sum(steps))


@examples(300)
@given(floats)
def test_format_value_reads_back_as_the_same_float(v: float) -> None:
    text = format_value(v)
    assert _same(float(text.replace("Inf", "inf")), v)


@examples(300)
@given(samples())
@example(Sample(C.UP, ("redis", "\udcff"), 1.0))  # failed every scrape: not UTF-8-encodable
def test_any_label_value_and_float_round_trip(sample: Sample) -> None:
    fam = sample.family
    store = SnapshotStore()
    store.put(TargetSnapshot("k", "t", render([sample])))
    series = parse(store.body().decode())
    labels = frozenset(zip(fam.labels, map(_utf8, sample.labels), strict=True))
    [(name, got_labels)] = series
    assert name == fam.name
    assert got_labels == labels
    assert _same(series[(name, labels)], sample.value)


@examples(100)
@given(histograms())
def test_histogram_label_values_and_sum_round_trip(sample: HistogramSample) -> None:
    fam = sample.family
    series = parse(fam.header + render([sample])[fam.name])
    labels = frozenset(zip(fam.labels, map(_utf8, sample.labels), strict=True))
    assert series[(fam.name + "_count", labels)] == sample.count
    assert _same(series[(fam.name + "_sum", labels)], sample.sum)
    inf = labels | {("le", "+Inf")}
    assert series[(fam.name + "_bucket", inf)] == sample.count


@examples(100)
@given(st.lists(samples(), max_size=20))
@example([Sample(C.UP, ("k", "\udc80"), 1.0), Sample(C.UP, ("k", "\udc81"), 0.0)])
def test_one_series_per_rendered_label_set(batch: list[Sample]) -> None:
    """The parser refuses duplicates (``parse``); two raw values that render alike
    (two lone surrogates) must not give the same series twice."""
    store = SnapshotStore()
    store.put(TargetSnapshot("k", "t", render(batch)))
    series = parse(store.body().decode())
    assert len(series) == len({(s.family.name, tuple(map(_utf8, s.labels))) for s in batch})


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_a_body_of_generated_samples() -> None:
    """One promtool run on the samples of every example, spread over many targets."""
    batches: list[list[Sample | HistogramSample]] = []

    @examples(150)
    @given(st.lists(samples() | histograms(), min_size=1, max_size=8))
    def collect(batch: list[Sample | HistogramSample]) -> None:
        batches.append(batch)

    collect()
    store = SnapshotStore()
    for i, batch in enumerate(batches):
        store.put(TargetSnapshot("k", f"t{i}", render(batch)))
    body = store.body()
    assert body.count(b"\n") > 500
    proc = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[:2000]


Change = tuple[str, str, list[Sample]]
"""(side, name, samples): side "t" puts a target, "s" a section, "r" removes a target."""

changes = st.tuples(
    st.sampled_from(["t", "t", "s", "r"]),
    st.sampled_from(["a", "b", "c"]),
    st.lists(samples(), max_size=6),
)


@examples(100)
@given(st.lists(changes, min_size=1, max_size=12))
def test_the_bodies_are_one_assembly_of_what_is_current(steps: list[Change]) -> None:
    """Whatever changed, and in whatever order: the plain body is what one assembly of
    the current targets and sections in catalogue order gives, and the gzip body is
    one gzip member of it."""
    store = SnapshotStore()
    current: dict[tuple[str, str], dict[str, str]] = {}
    for side, name, batch in steps:
        if side == "r":
            store.remove("k", name)
            current.pop(("k", name), None)
        elif side == "s":
            store.put_section(name, render(batch))
            current[("", name)] = render(batch)
        else:
            store.put(TargetSnapshot("k", name, render(batch)))
            current[("k", name)] = render(batch)
        store.body()  # laid out between changes too: the caches must follow
    by_family: dict[str, list[str]] = {}
    for key in sorted(current):
        for fam, text in current[key].items():
            by_family.setdefault(fam, []).append(text)
    assert store.body() == assemble(by_family).encode()
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert reader.decompress(store.gzip_body()) == store.body() and reader.eof
