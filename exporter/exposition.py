"""Exposition bodies as sequences of byte chunks: laid out from per-target pieces
without copying the big ones, and written out without being joined.

A piece is one target's (or one section's) lines of one family, encoded once. A
``Body`` lists the chunks of a response in order: runs of smaller pieces (family
headers, one target's share of a family) joined into chunks of a few MB, each big
piece left as the object it is, so a 38 MB body is sent from the bytes the store
already holds, in few writes. Few writes matter as much as few copies: each is a
system call after which the HTTP thread waits for the GIL again, up to the switch
interval when the probe loop is busy rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

COALESCE_BELOW = 64 << 10
"""Pieces smaller than this are joined with their neighbours (fewer, larger writes)."""
WRITE_CHUNK = 4 << 20
"""The largest write handed to the transport at once (what a loopback socket's send
buffer takes at most): what does not go out at once is copied into the transport's
buffer, so a bounded write keeps that copy bounded."""


@dataclass(frozen=True, slots=True)
class Body:
    """A response body as chunks to send in order."""

    chunks: tuple[bytes, ...]
    length: int

    @classmethod
    def of(cls, chunks: Iterable[bytes]) -> Body:
        """The body made of ``chunks``."""
        kept = tuple(c for c in chunks if c)
        return cls(kept, sum(map(len, kept)))

    def join(self) -> bytes:
        """The whole body as one bytes object (a copy, unless it has one chunk)."""
        if len(self.chunks) == 1:
            return self.chunks[0]
        return b"".join(self.chunks)

    def writes(self, size: int = WRITE_CHUNK) -> Iterator[bytes | memoryview]:
        """The chunks in writes of at most ``size`` bytes (views: nothing is copied)."""
        for chunk in self.chunks:
            if len(chunk) <= size:
                yield chunk
                continue
            view = memoryview(chunk)
            for start in range(0, len(view), size):
                yield view[start : start + size]


def coalesce(pieces: Iterable[bytes], below: int = COALESCE_BELOW) -> list[bytes]:
    """``pieces`` with each run of small ones joined into chunks of about ``below``
    bytes; a big piece is kept as it is (not copied)."""
    out: list[bytes] = []
    run: list[bytes] = []
    size = 0
    for piece in pieces:
        if len(piece) >= below:
            if run:
                out.append(b"".join(run))
                run, size = [], 0
            out.append(piece)
            continue
        run.append(piece)
        size += len(piece)
        if size >= below:
            out.append(b"".join(run))
            run, size = [], 0
    if run:
        out.append(b"".join(run))
    return out


def by_family(texts: Iterable[Mapping[str, bytes]]) -> dict[str, list[bytes]]:
    """Pieces grouped by family name, in the order of ``texts``."""
    grouped: dict[str, list[bytes]] = {}
    for text in texts:
        for name, piece in text.items():
            grouped.setdefault(name, []).append(piece)
    return grouped
