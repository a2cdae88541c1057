"""The backups target models (exporter/kinds/backups/config.py): one bad file per
error, with the exact message the loader prints."""

from __future__ import annotations

import pytest

from exporter.config import ConfigError, parse

from ...fixtures_backups import backups_yaml


def test_min_backups_is_not_negative() -> None:
    with pytest.raises(ConfigError) as err:
        parse(backups_yaml("{type: directory, path: /x}", "    min_backups: -1"), "cfg.yml")
    assert err.value.lines() == [
        "cfg.yml: backups[0].min_backups: Input should be greater than or equal to 0"
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{type: pgbackrest, stanza: main, command: [pgbackrest], output_file: /x}",
            "cfg.yml: backups[0].source.pgbackrest: give command or output_file, not both",
        ),
        (
            "{type: directory, path: /x, manifests: '*.json', files: '*.dump'}",
            "cfg.yml: backups[0].source.directory: give manifests or files, not both",
        ),
        (
            "{type: pgbackrest, stanza: main, wal_segment_size: 1000}",
            "cfg.yml: backups[0].source.pgbackrest.wal_segment_size: "
            "must be a power of two between 1 MiB and 1 GiB",
        ),
        (
            "{type: s3, bucket: b}",
            "cfg.yml: backups[0].source: "
            "expected a mapping with type: directory, pgbackrest or restore_drill",
        ),
        (
            "{type: directory}",
            "cfg.yml: backups[0].source.directory.path: required field is missing",
        ),
        (
            "{type: pgbackrest, stanza: --main}",
            "cfg.yml: backups[0].source.pgbackrest.stanza: "
            "String should match pattern '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$'",
        ),
    ],
)
def test_config_errors(source: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(backups_yaml(source), "cfg.yml")
    assert err.value.lines() == [message]
