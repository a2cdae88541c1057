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
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import kinds
from .catalogue import Family


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
