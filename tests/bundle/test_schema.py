"""The dashboards against Grafana's published dashboard model (``@grafana/schema``,
type-checked by tsc): every built dashboard and a fresh build pass, and each
planted fault (a misspelt field, a wrong type, at the top level, in a panel, in
a variable) fails with a message naming the file and the field."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bundle import schema

BUILT = schema.built_files()

Dashboard = dict[str, Any]


def _first_panel(dashboard: Dashboard) -> int:
    """Index of the first top-level panel that is not a row."""
    return next(n for n, p in enumerate(dashboard["panels"]) if p["type"] != "row")


def _rename(obj: dict[str, Any], old: str, new: str) -> None:
    obj[new] = obj.pop(old)


def _panel(d: Dashboard) -> dict[str, Any]:
    panel: dict[str, Any] = d["panels"][_first_panel(d)]
    return panel


# Each planted fault: what it does to a built dashboard, the JSON path the
# problem must name (``{i}``: the first panel that is not a row) and a phrase
# of its message.
FAULTS: dict[str, tuple[Callable[[Dashboard], None], str, str]] = {
    "misspelt top-level field": (
        lambda d: _rename(d, "refresh", "refrsh"),
        "refrsh",
        "unknown field 'refrsh'",
    ),
    "wrong top-level type": (
        lambda d: d.__setitem__("schemaVersion", str(d["schemaVersion"])),
        "schemaVersion",
        "wrong type: string, where the model has number",
    ),
    "missing required top-level field": (
        lambda d: d.pop("schemaVersion"),
        "",
        "missing required field 'schemaVersion'",
    ),
    "misspelt panel field": (
        lambda d: _rename(_panel(d), "gridPos", "gridPoss"),
        "panels[{i}].gridPoss",
        "unknown field 'gridPoss'",
    ),
    "wrong type inside gridPos": (
        lambda d: _panel(d)["gridPos"].__setitem__("w", "12"),
        "panels[{i}].gridPos.w",
        "wrong type: string, where the model has number",
    ),
    "missing field inside gridPos": (
        lambda d: _panel(d)["gridPos"].pop("h"),
        "panels[{i}].gridPos",
        "missing required field 'h'",
    ),
    "value outside an enum": (
        lambda d: _panel(d)["fieldConfig"]["defaults"]["thresholds"].__setitem__("mode", "absolut"),
        "panels[{i}].fieldConfig.defaults.thresholds.mode",
        'did you mean "absolute"?',
    ),
    "misspelt field in a value mapping": (
        lambda d: _panel(d)["fieldConfig"]["defaults"].__setitem__(
            "mappings", [{"type": "value", "options": {"0": {"txt": "down"}}}]
        ),
        'panels[{i}].fieldConfig.defaults.mappings[0].options["0"].txt',
        "unknown field 'txt'",
    ),
    "misspelt field in a panel link": (
        lambda d: _panel(d).__setitem__(
            "links", [{"title": "x", "url": "/d/x", "targetblank": True}]
        ),
        "panels[{i}].links[0].targetblank",
        "unknown field 'targetblank'",
    ),
    "panel without a type": (
        lambda d: _panel(d).pop("type"),
        "panels[{i}]",
        "missing required field",
    ),
    "wrong type in a variable": (
        lambda d: d["templating"]["list"][0].__setitem__("hide", "0"),
        "templating.list[0].hide",
        "wrong type: string, where the model has 0 | 1 | 2 | 3",
    ),
    "incomplete variable selection": (
        lambda d: d["templating"]["list"][0].__setitem__("current", {"text": "a"}),
        "templating.list[0].current",
        "missing required field 'value'",
    ),
}


def test_every_built_dashboard_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert BUILT, "no dashboards/build/*.json (run make dashboards)"
    code = schema.main([])
    out, err = capsys.readouterr()
    assert code == 0, err
    versions = schema.pinned()
    figures = re.fullmatch(
        r"schema: (\d+) dashboards \((\d+) panels, (\d+) variables\) valid against"
        r" @grafana/schema (\S+) \(typescript (\S+), tsc [\d.]+ s\)\n",
        out,
    )
    assert figures, out
    assert int(figures[1]) == len(BUILT)
    assert int(figures[2]) > 0
    assert figures[4] == versions["@grafana/schema"]
    assert figures[5] == versions["typescript"]
    print(out, end="")  # the figures, for the test log (pytest -s)


def test_a_fresh_build_is_valid() -> None:
    result = schema.check(schema.fresh())
    assert result.ok, "\n".join(map(str, result.problems))
    assert result.dashboards > 0


@pytest.fixture(scope="module")
def planted() -> tuple[Dashboard, schema.Result]:
    """One tsc run over a built dashboard, untouched, and one copy per fault."""
    base: Dashboard = json.loads(BUILT[0].read_text(encoding="utf-8"))
    assert base.get("templating", {}).get("list"), "the planted faults need a variable"
    dashboards: dict[str, Any] = {"untouched.json": base}
    for name, (plant, _path, _phrase) in FAULTS.items():
        faulty = copy.deepcopy(base)
        plant(faulty)
        dashboards[f"{name}.json"] = faulty
    both = copy.deepcopy(base)
    _panel(both)["gridPos"]["w"] = "12"
    both["templating"]["list"][0]["hide"] = "0"
    dashboards["two faults.json"] = both
    return base, schema.check(dashboards)


def test_the_untouched_copy_is_valid(planted: tuple[Dashboard, schema.Result]) -> None:
    _, result = planted
    assert [p for p in result.problems if p.dashboard == "untouched.json"] == []


@pytest.mark.parametrize("fault", FAULTS)
def test_a_planted_fault_names_file_and_field(
    fault: str, planted: tuple[Dashboard, schema.Result]
) -> None:
    base, result = planted
    _, path, phrase = FAULTS[fault]
    label = f"{fault}.json"
    problems = [p for p in result.problems if p.dashboard == label]
    assert len(problems) == 1, "\n".join(map(str, result.problems))
    problem = problems[0]
    expected = path.format(i=_first_panel(base))
    assert problem.path == expected, str(problem)
    assert phrase in problem.message, str(problem)
    text = str(problem)
    assert text.startswith(f"{label}: {expected or '(top level)'}"), text
    if expected.startswith("panels["):
        assert problem.panel == _panel(base)["title"]
        assert f'(panel "{problem.panel}")' in text


def test_every_fault_of_a_dashboard_is_reported(
    planted: tuple[Dashboard, schema.Result],
) -> None:
    base, result = planted
    paths = sorted(p.path for p in result.problems if p.dashboard == "two faults.json")
    assert paths == [f"panels[{_first_panel(base)}].gridPos.w", "templating.list[0].hide"]


def test_the_command_fails_on_a_planted_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dashboard = json.loads(BUILT[0].read_text(encoding="utf-8"))
    _rename(dashboard, "refresh", "refrsh")
    faulty = tmp_path / "faulty.json"
    faulty.write_text(json.dumps(dashboard), encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert schema.main([str(BUILT[0]), str(faulty), str(broken)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert f"{broken}: (top level): cannot be read as JSON" in lines[0]
    assert lines[1] == (
        f"{faulty}: refrsh: unknown field 'refrsh': not in Grafana's dashboard model"
    )
    assert lines[2].startswith("schema: 2 of 3 dashboards invalid against @grafana/schema")


def test_emitted_lines_carry_their_json_path() -> None:
    lines, paths = schema.emit({"a": [1, {"b": None}], "c d": {}}, lead="x = ")
    assert (
        "\n".join(lines)
        == 'x = {\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ],\n  "c d": {}\n};'
    )
    assert [schema.format_path(p) for p in paths] == [
        "",
        "a",
        "a[0]",
        "a[1]",
        "a[1].b",
        "a[1]",
        "a",
        '["c d"]',
        "",
    ]


def test_the_npm_packages_are_pinned_and_installed() -> None:
    manifest = json.loads((schema.SCHEMA_DIR / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((schema.SCHEMA_DIR / "package-lock.json").read_text(encoding="utf-8"))
    pins = schema.pinned()
    assert set(manifest["dependencies"]) == set(schema.PACKAGES)
    for name, version in pins.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: pin an exact version"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert schema.installed() == pins


def test_missing_npm_packages_say_how_to_install_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "package.json").write_text(
        (schema.SCHEMA_DIR / "package.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.setattr(schema, "SCHEMA_DIR", tmp_path)
    assert schema.main([str(BUILT[0])]) == 2
    err = capsys.readouterr().err
    assert "npm package @grafana/schema" in err and "not installed: run make setup" in err
