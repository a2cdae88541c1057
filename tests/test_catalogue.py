"""The catalogue: one definition per family, valid names, and what --list-metrics prints."""

from __future__ import annotations

import subprocess
import sys

import pytest

from exporter import kinds
from exporter.catalogue import Family


def test_names_are_unique_and_namespaced() -> None:
    names = [f.name for f in kinds.ALL]
    assert len(names) == len(set(names))
    assert all(n.startswith("tradeops_") for n in names)


def test_data_families_carry_a_config_name_label_first() -> None:
    for area, fams in kinds.AREAS.items():
        if area in ("exporter", "calendar"):  # exporter-level series
            continue
        for f in fams:
            assert f.labels and f.labels[0] in ("target", "session"), f.name


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("tradeops_x_total", "gauge", "h", ()), "ends in _total"),
        (("tradeops_x", "counter", "h", ()), "must end in _total"),
        (("tradeops_x", "gauge", "h", ("le",)), "bad label"),
        (("tradeops_x", "gauge", "h", ("__x",)), "bad label"),
        (("other_x", "gauge", "h", ()), "bad metric name"),
        (("tradeops_x", "histogram", "h", ()), "needs buckets"),
        (("tradeops_x", "gauge", "", ()), "help"),
    ],
)
def test_bad_families_are_rejected(args: tuple[object, ...], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Family(*args)  # type: ignore[arg-type]


def test_list_metrics_prints_the_catalogue() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "--list-metrics"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert [r[0] for r in rows] == [f.name for f in kinds.ALL]
    by_name = {r[0]: r for r in rows}
    assert by_name["tradeops_up"][1:3] == ["gauge", "kind,target"]
    assert by_name["tradeops_redis_stream_group_lag"][2] == "target,stream,group"
    assert by_name["tradeops_target_calendar_info"][1:3] == ["gauge", "kind,target,calendar"]


def test_calendar_area_follows_the_exporter_area() -> None:
    areas = list(kinds.AREAS)
    assert areas[areas.index("exporter") + 1] == "calendar"
    assert [f.name for f in kinds.AREAS["calendar"]] == [
        "tradeops_calendar_open",
        "tradeops_calendar_session_open_timestamp_seconds",
        "tradeops_calendar_session_close_timestamp_seconds",
        "tradeops_calendar_warmup_seconds",
        "tradeops_target_calendar_info",
    ]
