"""The statements' text: identifiers quoted, the freshness query index-friendly."""

from __future__ import annotations

import pytest

from exporter.kinds.timescale.sql import newest_row, newest_rows, quote_ident


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("ticks", '"ticks"'),
        ("Tick Table", '"Tick Table"'),
        ('we"ird', '"we""ird"'),
        ('x"; DROP TABLE t; --', '"x""; DROP TABLE t; --"'),
    ],
)
def test_quote_ident(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


def test_quote_ident_rejects_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        quote_ident("a\x00b")


def test_newest_row_is_index_friendly() -> None:
    assert newest_row("market", "ticks", "time") == (
        'SELECT "time" FROM "market"."ticks" WHERE "time" IS NOT NULL ORDER BY "time" DESC LIMIT 1'
    )
    batch = newest_rows([("a", "b", "c"), ("d", "e", "f")])
    assert batch.count("LIMIT 1") == 2 and "AS t0" in batch and "AS t1" in batch
