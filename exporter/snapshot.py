"""Per-target results rendered once into exposition text, and the store that lays
them out for ``/metrics``.

A target's text is rendered when its result arrives; a scrape sends bytes the
store already holds. Two sides make up the body: the targets' snapshots (large,
each replaced when its target's run ends) and the exporter's own sections (small:
its own series, the calendars, the HTTP connections; replaced by a ``/probe``
request, a reload, a new connection). Each side is laid out again only when it
changed, and only the pieces that changed are encoded and compressed again
(``exposition``, ``gzip_parts``), so a ``/probe`` or a change of one target costs
that much, not a rebuild and a recompression of the whole body. The families keep
the catalogue's order, each under one HELP/TYPE header, whichever side has them.

Threads: ``SnapshotStore`` is the one object both loops of the exporter process
share. The probe loop (runners, the calendar series, the exporter's own series)
and the HTTP thread (the connection series, on scrape) put and remove; the HTTP
thread reads the bodies. A ``TargetSnapshot`` is never changed once put (a change
is a new snapshot replacing the entry), so bodies are laid out from them without
holding the store's lock: that lock guards the dictionaries and their generations
for a few dictionary operations at a time, and a second lock lets one layout run
at a time, so a ``put`` never waits for a body to be laid out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from . import kinds
from .catalogue import Family
from .exposition import WRITE_CHUNK, Body, by_family, coalesce
from .gzip_parts import Deflated, deflate, member

SMALL_PIECE = 4 << 10
"""Pieces below this are compressed in runs with their neighbours, not one by one."""
RUN_PIECES = 64
"""The most pieces one compressed run holds: bounds what a change recompresses."""

Key = tuple[str, str]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TargetSnapshot:
    """The rendered state of one target: family name -> exposition lines."""

    kind: str
    target: str
    text: Mapping[str, str]


def assemble(
    chunks_by_family: Mapping[str, list[str]], families: Iterable[Family] = kinds.ALL
) -> str:
    """Join per-family chunks in catalogue order under one HELP/TYPE header each."""
    parts: list[str] = []
    for fam in families:
        chunks = chunks_by_family.get(fam.name)
        if chunks:
            parts.append(fam.header)
            parts.extend(chunks)
    return "".join(parts)


@dataclass(slots=True)
class StoreStats:
    """What the store has spent on layouts (cumulative): what a change costs."""

    layouts: int = 0
    """Bodies (plain or gzip) laid out again because a side changed."""
    encoded_bytes: int = 0
    """Exposition text encoded: each snapshot once, when first laid out."""
    deflated_bytes: int = 0
    """Body bytes compressed: each run of pieces once, when first sent with gzip."""


class _Encoder:
    """Each snapshot's text encoded once, kept while the snapshot is current."""

    def __init__(self, stats: StoreStats) -> None:
        self._stats = stats
        self._cache: dict[Key, tuple[TargetSnapshot, dict[str, bytes]]] = {}

    def encode(self, snapshots: Sequence[TargetSnapshot]) -> list[dict[str, bytes]]:
        """The encoded texts of ``snapshots``; forgets every other snapshot."""
        cache: dict[Key, tuple[TargetSnapshot, dict[str, bytes]]] = {}
        out = []
        for snap in snapshots:
            key = (snap.kind, snap.target)
            hit = self._cache.get(key)
            if hit is None or hit[0] is not snap:
                hit = (snap, {name: text.encode() for name, text in snap.text.items()})
                self._stats.encoded_bytes += sum(map(len, hit[1].values()))
            cache[key] = hit
            out.append(hit[1])
        self._cache = cache
        return out


class _Compressor:
    """Runs of pieces compressed once, found again by the identity of their pieces."""

    def __init__(self, stats: StoreStats) -> None:
        self._stats = stats
        self._cache: dict[tuple[int, ...], tuple[tuple[bytes, ...], Deflated]] = {}
        self._next: dict[tuple[int, ...], tuple[tuple[bytes, ...], Deflated]] = {}

    def begin(self) -> None:
        """Start a layout: what it does not use is forgotten at ``end``."""
        self._next = {}

    def end(self) -> None:
        """Keep only the runs the last layout used."""
        self._cache, self._next = self._next, {}

    def parts(self, pieces: Sequence[bytes]) -> list[Deflated]:
        """``pieces`` compressed: a big piece alone, small ones in runs."""
        return [self._part(run) for run in _runs(pieces)]

    def _part(self, run: tuple[bytes, ...]) -> Deflated:
        key = tuple(map(id, run))  # the cached entry holds the pieces: ids stay theirs
        hit = self._cache.get(key) or self._next.get(key)
        if hit is None:
            hit = (run, deflate(run))
            self._stats.deflated_bytes += hit[1].length
        self._next[key] = hit
        return hit[1]


def _runs(pieces: Sequence[bytes]) -> list[tuple[bytes, ...]]:
    """Big pieces alone; small ones in runs of at most RUN_PIECES (bounded by count,
    not size, so that a piece growing does not move every later run's boundaries)."""
    out: list[tuple[bytes, ...]] = []
    run: list[bytes] = []
    for piece in pieces:
        if len(piece) >= SMALL_PIECE:
            if run:
                out.append(tuple(run))
                run = []
            out.append((piece,))
            continue
        run.append(piece)
        if len(run) == RUN_PIECES:
            out.append(tuple(run))
            run = []
    if run:
        out.append(tuple(run))
    return out


@dataclass(slots=True)
class _Side:
    """One side of the body (targets, or sections) as laid out at one generation;
    the targets' ``runs`` and each side's ``gzip`` are filled when first needed."""

    generation: int = -1
    pieces: dict[str, list[bytes]] = field(default_factory=dict)
    """By family name, in key order."""
    runs: dict[int, list[bytes]] | None = None
    """The targets' families between two families the sections have, headers
    included, joined into chunks of about WRITE_CHUNK (few writes, few hand-overs of
    the GIL): keyed by the catalogue index of the section family that ends the run."""
    runs_around: frozenset[str] = frozenset()
    """The section families ``runs`` were cut at."""
    gzip: dict[str, list[Deflated]] | None = None
    """A family's pieces, compressed."""


class SnapshotStore:
    """Latest snapshot per target, the exporter's own sections, and the bodies laid
    out from them.

    Safe to use from several threads (see the module's docstring).
    """

    def __init__(self, families: Sequence[Family] = kinds.ALL) -> None:
        self._order = tuple(f.name for f in families)
        self._headers = {f.name: f.header.encode() for f in families}
        self._header_parts: dict[str, Deflated] = {}
        self._snapshots: dict[Key, TargetSnapshot] = {}
        self._sections: dict[str, TargetSnapshot] = {}
        self._lock = threading.Lock()
        """Guards ``_snapshots``, ``_sections`` and their generations; held for
        dictionary operations only."""
        self._build_lock = threading.Lock()
        """Guards everything below; held while a body is laid out."""
        self._generation = 0
        self._section_generation = 0
        self.stats = StoreStats()
        self._encoders = (_Encoder(self.stats), _Encoder(self.stats))
        self._compressors = (_Compressor(self.stats), _Compressor(self.stats))
        self._sides = (_Side(), _Side())
        self._bodies: dict[bool, tuple[tuple[int, int], Body]] = {}
        self._joined: dict[bool, tuple[tuple[int, int], bytes]] = {}

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

    def put_section(self, name: str, text: Mapping[str, str]) -> None:
        """Replace one of the exporter's own sections (its own series, the calendars,
        the HTTP connections): laid out apart from the targets, so a change here
        leaves their part of the body as it is."""
        with self._lock:
            self._sections[name] = TargetSnapshot("", name, text)
            self._section_generation += 1

    def get(self, kind: str, target: str) -> TargetSnapshot | None:
        """The target's latest snapshot, if any; kind ``""`` names a section."""
        with self._lock:
            if kind == "":
                return self._sections.get(target)
            return self._snapshots.get((kind, target))

    def exposition(self, gzip: bool = False) -> Body:
        """The current body, plain or as one gzip member, as chunks to send."""
        with self._build_lock:
            generations = self._refresh()
            cached = self._bodies.get(gzip)
            if cached is not None and cached[0] == generations:
                return cached[1]
            body = self._gzip_layout() if gzip else self._plain_layout()
            self.stats.layouts += 1
            self._bodies[gzip] = (generations, body)
            return body

    def body(self) -> bytes:
        """The whole exposition text (cached until something changes)."""
        return self._joined_body(False)

    def gzip_body(self) -> bytes:
        """``body()`` compressed with gzip (cached until something changes)."""
        return self._joined_body(True)

    def _joined_body(self, gzip: bool) -> bytes:
        body = self.exposition(gzip)
        with self._build_lock:
            cached = self._joined.get(gzip)
            if cached is None or cached[0] != self._bodies[gzip][0]:
                cached = self._joined[gzip] = (self._bodies[gzip][0], body.join())
            return cached[1]

    def _refresh(self) -> tuple[int, int]:
        """Both sides brought to their latest generation (``_build_lock`` held): the
        snapshots are taken under ``_lock``, encoded and grouped outside it."""
        with self._lock:
            generations = (self._generation, self._section_generation)
            stale = [g != side.generation for g, side in zip(generations, self._sides, strict=True)]
            targets = [self._snapshots[k] for k in sorted(self._snapshots)] if stale[0] else []
            sections = [self._sections[k] for k in sorted(self._sections)] if stale[1] else []
        sides = list(self._sides)
        for i, snapshots in enumerate((targets, sections)):
            if stale[i]:
                sides[i] = _Side(generations[i], by_family(self._encoders[i].encode(snapshots)))
        self._sides = (sides[0], sides[1])
        return generations

    def _plain_layout(self) -> Body:
        targets, sections = self._sides
        own = frozenset(sections.pieces)
        if targets.runs is None or targets.runs_around != own:
            targets.runs, targets.runs_around = self._runs(targets.pieces, own), own
        chunks: list[bytes] = []
        for i, name in enumerate(self._order):
            if name in own:
                chunks.extend(targets.runs.get(i, ()))
                chunks.append(self._headers[name])
                chunks.extend(sections.pieces[name])
                chunks.extend(targets.pieces.get(name, ()))
        chunks.extend(targets.runs.get(len(self._order), ()))
        return Body.of(coalesce(chunks))

    def _runs(
        self, pieces: Mapping[str, list[bytes]], cut: frozenset[str]
    ) -> dict[int, list[bytes]]:
        """The families of ``pieces`` with their headers, in catalogue order, in runs
        ended by the families of ``cut`` (and the end), each joined into big chunks."""
        runs: dict[int, list[bytes]] = {}
        run: list[bytes] = []
        for i, name in enumerate(self._order):
            if name in cut:
                runs[i], run = coalesce(run, WRITE_CHUNK), []
            elif name in pieces:
                run.append(self._headers[name])
                run.extend(pieces[name])
        runs[len(self._order)] = coalesce(run, WRITE_CHUNK)
        return runs

    def _gzip_layout(self) -> Body:
        for side, compressor in zip(self._sides, self._compressors, strict=True):
            if side.gzip is None:
                compressor.begin()
                side.gzip = {name: compressor.parts(p) for name, p in side.pieces.items()}
                compressor.end()
        targets, sections = (side.gzip or {} for side in self._sides)
        deflated: list[Deflated] = []
        for name, parts in self._families(targets, sections):
            deflated.append(self._header_part(name))
            deflated.extend(parts)
        return Body.of(coalesce(member(deflated), WRITE_CHUNK))

    def _families(
        self, targets: Mapping[str, list[T]], sections: Mapping[str, list[T]]
    ) -> Iterator[tuple[str, list[T]]]:
        """(family, the sections' parts then the targets') in catalogue order, for
        every family either side has; a family outside the catalogue is left out."""
        for name in self._order:
            theirs, own = targets.get(name), sections.get(name)
            if theirs and own:
                yield name, own + theirs
            elif theirs or own:
                yield name, theirs or own or []

    def _header_part(self, name: str) -> Deflated:
        part = self._header_parts.get(name)
        if part is None:
            part = self._header_parts[name] = deflate([self._headers[name]])
        return part
