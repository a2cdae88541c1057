"""Bodies as chunks: coalescing small pieces, writing big ones without copies."""

from __future__ import annotations

from exporter.exposition import Body, by_family, coalesce


def test_small_pieces_are_joined_and_big_ones_kept_as_they_are() -> None:
    big = b"x" * 100
    pieces = [b"a", b"bb", big, b"c" * 5, b"d" * 6, b"e"]
    out = coalesce(pieces, below=10)
    assert out == [b"abb", big, b"c" * 5 + b"d" * 6, b"e"]
    assert out[1] is big  # not copied
    assert b"".join(out) == b"".join(pieces)
    assert coalesce([]) == []


def test_a_body_writes_views_of_its_chunks_in_bounded_writes() -> None:
    big = bytes(range(256)) * 40  # 10240 bytes
    body = Body.of([b"head", b"", big, b"tail"])
    assert body.chunks == (b"head", big, b"tail") and body.length == 10248
    writes = list(body.writes(size=4096))
    assert [len(w) for w in writes] == [4, 4096, 4096, 2048, 4]
    assert all(isinstance(w, memoryview) and w.obj is big for w in writes[1:4])
    assert b"".join(bytes(w) for w in writes) == body.join()
    single = Body.of([big])
    assert single.join() is big


def test_pieces_are_grouped_by_family_in_order() -> None:
    grouped = by_family([{"a": b"1", "b": b"2"}, {"b": b"3"}, {}])
    assert grouped == {"a": [b"1"], "b": [b"2", b"3"]}
