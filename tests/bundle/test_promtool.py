"""Every promtool test file passes, and together they fire every alert, show
every alert not firing and evaluate every recording rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from bundle import check

RULES = check.load_rules()


@pytest.mark.parametrize("path", check.test_files(), ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path) -> None:
    result = check.run_promtool(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_file_has_a_test_file() -> None:
    tested = {p.name.removesuffix(".test.yml") for p in check.test_files()}
    assert {p.stem for p in check.rule_files()} <= tested


def test_every_alert_and_recording_rule_is_covered() -> None:
    assert check.coverage_problems(RULES, check.coverage()) == []


def test_coverage_catches_an_untested_alert_and_a_test_of_nothing(tmp_path: Path) -> None:
    (tmp_path / "x.test.yml").write_text(
        "tests:\n"
        "  - alert_rule_test:\n"
        "      - {alertname: NoSuchAlert, eval_time: 1m, exp_alerts: []}\n"
    )
    problems = check.coverage_problems(RULES, check.coverage(tmp_path))
    assert "NoSuchAlert: tested but no such alert" in problems
    assert "ProbeNearDeadline: no test fires it" in problems
    assert "tradeops:calendar_in_session: no promql_expr_test evaluates it" in problems
