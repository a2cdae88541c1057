"""TimescaleDB target configuration (one bad file per error) and the pure helpers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from exporter.config import ConfigError, parse
from exporter.kinds.timescale.probe import TimescaleTarget, to_unix
from exporter.kinds.timescale.sql import newest_row, newest_rows, quote_ident

BASE = '{name: db, address: "db.internal:5432", database: ticks, user: monitor'


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "cfg.yml")
    return info.value.lines()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            ", tls: {insecure_skip_verify: true}}",
            "cfg.yml: timescale[0].tls: needs sslmode require, verify-ca or verify-full",
        ),
        (
            ", sslmode: require, tls: {server_name: db}}",
            "cfg.yml: timescale[0].tls.server_name: not supported for this kind of target:"
            " the certificate must name the host in the address",
        ),
        (
            ", sslmode: sometimes}",
            "cfg.yml: timescale[0].sslmode: Input should be 'disable', 'allow', 'prefer',"
            " 'require', 'verify-ca' or 'verify-full'",
        ),
        (
            ", timeout: 1s, statement_timeout: 2s}",
            "cfg.yml: timescale[0].statement_timeout: must not exceed the timeout (1s)",
        ),
        (
            ", tables: [{name: t, table: a}, {name: t, table: b}]}",
            "cfg.yml: timescale[0].tables: duplicate table name 't'",
        ),
        (
            ", tables: [{name: t, table: a, time_unit: min}]}",
            "cfg.yml: timescale[0].tables[0].time_unit: Input should be 's', 'ms', 'us' or 'ns'",
        ),
        (
            ', tables: [{name: t, table: "a\\0b"}]}',
            "cfg.yml: timescale[0].tables[0].table: must not contain a NUL character",
        ),
        (
            ', tables: [{name: "market ticks", table: a}]}',
            "cfg.yml: timescale[0].tables[0].name: String should match pattern"
            " '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'",
        ),
        (
            ", tables: [{name: t}]}",
            "cfg.yml: timescale[0].tables[0].table: required field is missing",
        ),
        (
            ", password: hunter2}",
            "cfg.yml: timescale[0].password: inline secrets are not accepted:"
            " use a ${ENV_VAR} reference or the *_file field",
        ),
    ],
)
def test_config_errors_name_the_field(fields: str, message: str) -> None:
    assert _errors(f"timescale:\n  - {BASE}{fields}\n") == [message]


def test_address_with_credentials_is_not_echoed() -> None:
    lines = _errors(
        'timescale:\n  - {name: db, address: "postgres://u:s3cret@h/x", database: d, user: u}\n'
    )
    assert lines == [
        "cfg.yml: timescale[0].address: expected host:port"
        " (the value is not echoed: it may hold credentials)"
    ]
    assert "s3cret" not in lines[0]


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TS_PW", "pw-from-env")
    config = parse(
        "global: {timeout: 4s}\n"
        "timescale:\n"
        '  - {name: db, address: "db.internal", database: d, user: u, password: "${TS_PW}",\n'
        "     tables: [{name: ticks, table: ticks, freshness_sla: 1m},\n"
        "              {name: quotes, table: quotes}]}\n",
        "cfg.yml",
    )
    target = config.targets["timescale"][0]
    assert isinstance(target, TimescaleTarget)
    assert target.password_value() == "pw-from-env"
    assert target.sslmode == "prefer"
    assert target.statement_timeout_s == 2.0
    table = target.tables[0]
    assert (table.schema_, table.time_column, table.freshness_sla) == ("public", "time", 60.0)
    assert (target.tables[1].freshness_sla, target.tables[1].calendar) == (300.0, None)
    assert target.calendar == "always"
    assert (target.statement_cache, target.keep_connection) == (True, True)


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


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "s", 1767323045.0),
        (dt.datetime(2026, 1, 2, 3, 4, 5), "s", 1767323045.0),  # naive: read as UTC
        (dt.date(2026, 1, 2), "s", 1767312000.0),
        (1767323045, "s", 1767323045.0),
        (1767323045500, "ms", 1767323045.5),
        (Decimal("1767323045500000"), "us", 1767323045.5),
        (1767323045500000000, "ns", 1767323045.5),
        ("yesterday", "s", None),
        (True, "s", None),
    ],
)
def test_to_unix(raw: object, unit: str, expected: float | None) -> None:
    got = to_unix(raw, unit)
    assert got == (pytest.approx(expected) if expected is not None else None)
