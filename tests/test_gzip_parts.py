"""One gzip member from parts compressed on their own."""

from __future__ import annotations

import gzip
import os
import random
import zlib

from exporter.gzip_parts import crc_combine, crc_shift, deflate, member


def _one_member(data: bytes) -> bytes:
    """Decompress as a reader that stops at the end of the first member does."""
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = reader.decompress(data)
    assert reader.eof and not reader.unused_data
    return out


def test_crc_combine_matches_the_crc_of_the_concatenation() -> None:
    rng = random.Random(1)
    for length_a, length_b in [(0, 0), (0, 5), (5, 0), (1, 1), (1000, 3), (70_000, 100_000)]:
        a, b = rng.randbytes(length_a), rng.randbytes(length_b)
        combined = crc_combine(zlib.crc32(a), zlib.crc32(b), crc_shift(len(b)))
        assert combined == zlib.crc32(a + b)


def test_a_member_of_parts_is_one_valid_gzip_member() -> None:
    rng = random.Random(2)
    for _ in range(50):
        pieces = [rng.randbytes(rng.randrange(0, 3000)) * rng.randrange(1, 4) for _ in range(6)]
        parts = [deflate([p[: len(p) // 3], p[len(p) // 3 :]]) for p in pieces]
        body = b"".join(member(parts))
        assert _one_member(body) == gzip.decompress(body) == b"".join(pieces)


def test_empty_members_and_parts() -> None:
    assert _one_member(b"".join(member([]))) == b""
    assert _one_member(b"".join(member([deflate([]), deflate([b"x"]), deflate([b""])]))) == b"x"


def test_a_part_records_its_input() -> None:
    data = os.urandom(1000) + b"a" * 5000
    part = deflate([data[:10], data[10:]])
    assert (part.crc, part.length, part.shift) == (zlib.crc32(data), len(data), crc_shift(6000))
    assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(part.data) == data
