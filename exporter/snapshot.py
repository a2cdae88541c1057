"""Per-target results rendered once into exposition text, and the store that
concatenates them for ``/metrics``.

A target's text is rendered when its result arrives; a scrape copies bytes. The
whole body is cached and rebuilt only when some target's snapshot changed, so a
hung target or a large target never slows a scrape down.

Threads: ``SnapshotStore`` is the one object both loops of the exporter process
share. The probe loop (runners, the calendar series, the exporter's own series)
and the HTTP thread (the connection series, on scrape) ``put`` and ``remove``; the
HTTP thread reads ``body`` and ``gzip_body``. A ``TargetSnapshot`` and its ``text``
are never changed once put (a change is a new snapshot replacing the entry), so a
body can be assembled from them without holding the store's lock: the lock guards
the dictionary and its generation for a few dictionary operations at a time, and
a second lock lets one rebuild (and one gzip) run at a time, so a ``put`` never
waits for a body to be assembled.
"""

from __future__ import annotations

import gzip
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import catalogue
from .catalogue import Family
from .probe import HistogramSample, Sample


def format_value(value: float) -> str:
    """Exposition-format text of a sample value."""
    value = float(value)
    if value.is_integer():  # false for NaN and the infinities
        return str(int(value)) if -1e15 < value < 1e15 else repr(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Iterable[str], escaped: Iterable[str]) -> str:
    inner = ",".join(f'{n}="{v}"' for n, v in zip(names, escaped, strict=True))
    return "{" + inner + "}" if inner else ""


def _render_histogram(s: HistogramSample, escaped: tuple[str, ...]) -> str:
    f = s.family
    lines = []
    for bound, count in zip(f.buckets, s.cumulative_counts, strict=True):
        lbl = _labels((*f.labels, "le"), (*escaped, format_value(bound)))
        lines.append(f"{f.name}_bucket{lbl} {count}\n")
    lbl_inf = _labels((*f.labels, "le"), (*escaped, "+Inf"))
    lines.append(f"{f.name}_bucket{lbl_inf} {s.count}\n")
    plain = _labels(f.labels, escaped)
    lines.append(f"{f.name}_sum{plain} {format_value(s.sum)}\n")
    lines.append(f"{f.name}_count{plain} {s.count}\n")
    return "".join(lines)


_TEMPLATES: dict[str, str] = {}


def _template(f: Family) -> str:
    """``name{a="%s",b="%s"} %s\n`` for the family's labels (cached)."""
    tpl = _TEMPLATES.get(f.name)
    if tpl is None:
        tpl = _TEMPLATES[f.name] = (
            f.name
            + ("{" + ",".join(f'{n}="%s"' for n in f.labels) + "}" if f.labels else "")
            + " %s\n"
        )
    return tpl


def _escape_fast(value: str) -> str:
    if not value.isascii():
        value = _utf8(value)
    if "\\" in value or '"' in value or "\n" in value:
        return _escape(value)
    return value


def _utf8(value: str) -> str:
    """``value`` with each lone surrogate (from bytes decoded with ``surrogateescape``)
    replaced by U+FFFD: UTF-8 cannot encode them, and one would fail every scrape."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value


def render(samples: Iterable[Sample | HistogramSample]) -> dict[str, str]:
    """Render samples into exposition lines grouped by family name.

    A repeated label set (as rendered) keeps its last value, so a probe cannot
    produce a duplicate series.
    """
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    for s in samples:
        values = tuple(map(_escape_fast, s.labels))
        if isinstance(s, HistogramSample):
            seen[(s.family.name, values)] = _render_histogram(s, values)
        else:
            seen[(s.family.name, values)] = _template(s.family) % (
                *values,
                format_value(s.value),
            )
    grouped: dict[str, list[str]] = {}
    for (name, _), line in seen.items():
        grouped.setdefault(name, []).append(line)
    return {name: "".join(lines) for name, lines in grouped.items()}


@dataclass(frozen=True, slots=True)
class TargetSnapshot:
    """The rendered state of one target: family name -> exposition lines."""

    kind: str
    target: str
    text: Mapping[str, str]


def assemble(
    chunks_by_family: Mapping[str, list[str]], families: Iterable[Family] = catalogue.ALL
) -> str:
    """Join per-family chunks in catalogue order under one HELP/TYPE header each."""
    parts: list[str] = []
    for fam in families:
        chunks = chunks_by_family.get(fam.name)
        if chunks:
            parts.append(fam.header)
            parts.extend(chunks)
    return "".join(parts)


class SnapshotStore:
    """Latest snapshot per target and the cached exposition body built from them.

    Safe to use from several threads (see the module's docstring).
    """

    def __init__(self) -> None:
        self._snapshots: dict[tuple[str, str], TargetSnapshot] = {}
        self._lock = threading.Lock()
        """Guards ``_snapshots`` and ``_generation``; held for dictionary operations only."""
        self._build_lock = threading.Lock()
        """Guards the cached bodies and their generations; held while one is rebuilt."""
        self._generation = 0
        self._cached_generation = -1
        self._body = b""
        self._gzip_generation = -1
        self._gzip_body = b""

    def put(self, snap: TargetSnapshot) -> None:
        """Replace the target's snapshot."""
        with self._lock:
            self._snapshots[(snap.kind, snap.target)] = snap
            self._generation += 1

    def remove(self, kind: str, target: str) -> None:
        """Forget a target (it left the configuration): all its series go."""
        with self._lock:
            if self._snapshots.pop((kind, target), None) is not None:
                self._generation += 1

    def get(self, kind: str, target: str) -> TargetSnapshot | None:
        """The target's latest snapshot, if any."""
        with self._lock:
            return self._snapshots.get((kind, target))

    def body(self) -> bytes:
        """The concatenated exposition text of every target (cached)."""
        with self._build_lock:
            return self._current_body()

    def gzip_body(self) -> bytes:
        """``body()`` compressed with gzip level 1 (cached per generation)."""
        with self._build_lock:
            body = self._current_body()
            if self._gzip_generation != self._cached_generation:
                self._gzip_body = gzip.compress(body, compresslevel=1)
                self._gzip_generation = self._cached_generation
            return self._gzip_body

    def _current_body(self) -> bytes:
        """The body of the latest generation, rebuilt if it is stale (``_build_lock``
        held): the snapshots are taken under ``_lock``, assembled outside it."""
        with self._lock:
            generation = self._generation
            if generation == self._cached_generation:
                return self._body
            snapshots = [self._snapshots[key] for key in sorted(self._snapshots)]
        by_family: dict[str, list[str]] = {}
        for snap in snapshots:
            for name, text in snap.text.items():
                by_family.setdefault(name, []).append(text)
        self._body = assemble(by_family).encode()
        self._cached_generation = generation
        return self._body
