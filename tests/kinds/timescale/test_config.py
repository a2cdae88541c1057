"""TimescaleDB/PostgreSQL target configuration: one bad file per error, the defaults."""

from __future__ import annotations

import pytest

from exporter.config import ConfigError, parse
from exporter.kinds.timescale.config import TimescaleTarget

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
