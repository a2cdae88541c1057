"""The drills target model (exporter/kinds/drills/config.py), read as the loader does."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import ConfigError, parse
from exporter.kinds.drills.config import DrillsTarget


def test_config_fields_and_errors(tmp_path: Path) -> None:
    config = parse(
        f"drills:\n  - {{name: shift-start, path: {tmp_path}, max_interval: 26h,"
        " calendar: always, glob: 'paging-drill-*.json'}\n",
        "c.yml",
    )
    (t,) = config.targets["drills"]
    assert isinstance(t, DrillsTarget)
    assert (t.max_interval, t.glob, t.path) == (93600, "paging-drill-*.json", tmp_path)
    with pytest.raises(ConfigError) as err:
        parse("drills:\n  - {name: d, path: /x, max_intervall: 1h}\n", "c.yml")
    assert err.value.lines() == ["c.yml: drills[0].max_intervall: unknown field"]
    with pytest.raises(ConfigError) as err:
        parse("drills:\n  - {name: d}\n", "c.yml")
    assert err.value.lines() == ["c.yml: drills[0].path: required field is missing"]
