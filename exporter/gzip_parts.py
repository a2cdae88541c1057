"""One gzip member from parts compressed on their own, so that a body whose parts
change one at a time is recompressed one part at a time.

Each part is a raw deflate stream ended by a sync flush: byte-aligned and not final,
so parts concatenated are one valid deflate stream (no part refers back into
another). ``member`` puts the gzip header before them and, after a final empty
block, the trailer: the CRC-32 of the whole body, combined from the parts' CRCs
without reading their bytes again (zlib's ``crc32_combine``), and its length.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LEVEL = 1
"""Fast: the exporter compresses what changed on the scrape that first asks for it."""
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
"""Magic, deflate, no flags, no mtime, no extra flags, unknown OS (as gzip.compress
with mtime=0 writes, apart from the OS byte)."""
_FINAL_BLOCK = b"\x03\x00"
"""An empty final fixed-Huffman block: ends the deflate stream the parts began."""
_POLY = 0xEDB88320
"""CRC-32's polynomial, bit-reversed."""


def _multmodp(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC polynomial (bit-reversed, as zlib keeps them)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if a & (m - 1) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _x2n_table() -> tuple[int, ...]:
    """x^(2^n) modulo the polynomial, n = 0..31."""
    table = [1 << 30]  # x^1
    for _ in range(31):
        table.append(_multmodp(table[-1], table[-1]))
    return tuple(table)


_X2N = _x2n_table()


def crc_shift(length: int) -> int:
    """The operator that moves a CRC past ``length`` more bytes: x^(8 * length) mod p."""
    p = 1 << 31  # x^0
    k = 3  # 2^3 bits a byte
    while length:
        if length & 1:
            p = _multmodp(_X2N[k & 31], p)
        length >>= 1
        k += 1
    return p


def crc_combine(crc_a: int, crc_b: int, shift_b: int) -> int:
    """The CRC-32 of A followed by B, from A's and B's (``shift_b = crc_shift(len(B))``)."""
    return _multmodp(shift_b, crc_a) ^ crc_b


@dataclass(frozen=True, slots=True)
class Deflated:
    """One part: its raw deflate bytes and what the trailer needs of its input."""

    data: bytes
    crc: int
    length: int
    shift: int
    """``crc_shift(length)``, computed once per part rather than per body."""


def deflate(pieces: Iterable[bytes]) -> Deflated:
    """Compress ``pieces`` (read in order, never joined) into one part."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    out: list[bytes] = []
    crc = length = 0
    for piece in pieces:
        out.append(compressor.compress(piece))
        crc = zlib.crc32(piece, crc)
        length += len(piece)
    out.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    return Deflated(b"".join(out), crc, length, crc_shift(length))


def member(parts: Sequence[Deflated]) -> list[bytes]:
    """A whole gzip member made of ``parts``, as chunks to send in order."""
    crc = length = 0
    for part in parts:
        crc = crc_combine(crc, part.crc, part.shift)
        length += part.length
    trailer = crc.to_bytes(4, "little") + (length & 0xFFFFFFFF).to_bytes(4, "little")
    return [_HEADER, *(part.data for part in parts), _FINAL_BLOCK + trailer]
