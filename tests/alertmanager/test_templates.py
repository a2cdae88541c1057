"""The notification templates, rendered by ``amtool template render`` with the
notification data in tests/alertmanager/data/*.json.

- Golden files: every field of the shipped Slack and PagerDuty notifiers
  (their template strings from alertmanager.yml), rendered with each data
  file, equal tests/alertmanager/golden/<data>.<slack|pagerduty>.txt.
  After a deliberate change, rewrite them and review the diff:

      UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/alertmanager/test_templates.py

- Every template defined in alertmanager/templates/ renders with every data
  file (``amtool check-config`` accepts a reference to an undefined template;
  rendering does not).
- The PagerDuty summary stays within the Events API's 1,024 characters.

``--template.data`` is always passed: without it amtool 0.25 renders a fake
notification with no alerts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from . import am

CONFIG = am.shipped_config()
RECEIVERS = {r["name"]: r for r in CONFIG["receivers"]}
DATA_FILES = sorted(am.DATA_DIR.glob("*.json"))
DEFINED = am.defined_templates()
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
SEPARATOR = "\n\x1e@@field@@\x1e\n"
NOT_RENDERED = {"api_url_file", "routing_key_file", "send_resolved", "url"}

NOTIFIERS = {
    "slack": RECEIVERS["slack-oncall"]["slack_configs"][0],
    "pagerduty": RECEIVERS["pagerduty-oncall"]["pagerduty_configs"][0],
}


def fields(notifier: dict[str, Any]) -> dict[str, str]:
    """The notifier's rendered fields: path -> template string."""
    return {
        path: value
        for path, value in am.strings(notifier)
        if path.split(".", 1)[0].split("[", 1)[0] not in NOT_RENDERED
    }


def render_many(texts: list[str], data: Path) -> list[str]:
    """Render several template strings with one amtool run."""
    result = am.render(SEPARATOR.join(texts), data)
    assert result.returncode == 0, f"{data.name}: {result.stderr}"
    parts = result.stdout.split(SEPARATOR)
    assert len(parts) == len(texts)
    return parts


def golden_text(kind: str, data: Path) -> str:
    notifier_fields = fields(NOTIFIERS[kind])
    rendered = render_many(list(notifier_fields.values()), data)
    out = [f"# {data.name} through {kind} (regenerate: UPDATE_GOLDEN=1, see test_templates.py)"]
    for path, value in zip(notifier_fields, rendered, strict=True):
        out += [f"## {path}", value.rstrip("\n")]
    return "\n".join(out) + "\n"


def test_there_are_data_files_for_each_case() -> None:
    names = {p.stem for p in DATA_FILES}
    for case in ("critical-firing-single", "critical-firing-grouped", "critical-resolved-single"):
        assert case in names
    for case in ("warning-firing-single", "warning-firing-grouped", "warning-resolved-grouped"):
        assert case in names


@pytest.mark.parametrize("kind", sorted(NOTIFIERS))
@pytest.mark.parametrize("data", DATA_FILES, ids=lambda p: p.stem)
def test_golden(kind: str, data: Path) -> None:
    golden = am.GOLDEN_DIR / f"{data.stem}.{kind}.txt"
    text = golden_text(kind, data)
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"{golden} missing: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


def test_every_golden_has_its_data_file() -> None:
    expected = {f"{d.stem}.{k}.txt" for d in DATA_FILES for k in NOTIFIERS}
    assert {p.name for p in am.GOLDEN_DIR.glob("*.txt")} == expected


def test_the_receivers_of_a_kind_share_their_templates() -> None:
    """The goldens, made with slack-oncall and pagerduty-oncall, hold for all."""
    for kind, key, own in (
        ("slack", "slack_configs", {"api_url_file", "channel"}),
        ("pagerduty", "pagerduty_configs", {"routing_key_file"}),
    ):
        shown = {k: v for k, v in NOTIFIERS[kind].items() if k not in own}
        for receiver in CONFIG["receivers"]:
            for notifier in receiver.get(key) or []:
                assert {k: v for k, v in notifier.items() if k not in own} == shown


# --- every template ------------------------------------------------------------


def test_template_names_are_unique_and_referenced_ones_exist() -> None:
    assert len(DEFINED) == len(set(DEFINED)), DEFINED
    called = set(am.template_calls(am.CONFIG.read_text(encoding="utf-8")))
    for path in am.TEMPLATE_FILES:
        called |= set(am.template_calls(path.read_text(encoding="utf-8")))
    assert called <= set(DEFINED), called - set(DEFINED)
    assert {n for n in DEFINED if not n.startswith("__")} <= called


@pytest.mark.parametrize("data", DATA_FILES, ids=lambda p: p.stem)
def test_every_defined_template_renders(data: Path) -> None:
    render_many([f'{{{{ template "{name}" . }}}}' for name in DEFINED], data)


def test_a_reference_to_an_undefined_template_fails_to_render(tmp_path: Path) -> None:
    """The check above can fail: amtool renders with the same parser."""
    result = am.render('{{ template "slack.tradeops.nope" . }}', DATA_FILES[0])
    assert result.returncode != 0
    assert "not defined" in result.stderr


def test_each_template_says_something_for_some_data() -> None:
    outputs: dict[str, list[str]] = {name: [] for name in DEFINED}
    for data in DATA_FILES:
        rendered = render_many([f'{{{{ template "{n}" . }}}}' for n in DEFINED], data)
        for name, text in zip(DEFINED, rendered, strict=True):
            outputs[name].append(text)
    assert [n for n, texts in outputs.items() if not any(t.strip() for t in texts)] == []


# --- PagerDuty summary ---------------------------------------------------------


def notification(tmp_path: Path, alerts: list[dict[str, Any]], name: str = "data") -> Path:
    """Notification data as Alertmanager makes it for a group of these alerts."""
    group_by = CONFIG["route"]["group_by"]
    common = dict(alerts[0]["labels"])
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    annotations = dict(alerts[0]["annotations"])
    for a in alerts[1:]:
        annotations = {k: v for k, v in annotations.items() if a["annotations"].get(k) == v}
    doc = {
        "receiver": "pagerduty-oncall",
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": alerts,
        "groupLabels": {k: common[k] for k in group_by if k in common},
        "commonLabels": common,
        "commonAnnotations": annotations,
        "externalURL": "https://alertmanager.tradeops.example",
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def alert(description: str, **labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": "BigAlert", "severity": "critical", "area": "kafka", **labels},
        "annotations": {"summary": "A big alert.", "description": description},
        "startsAt": "2024-03-04T09:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "0",
    }


def summary(tmp_path: Path, description: str) -> str:
    data = notification(tmp_path, [alert(description, target="t1")])
    result = am.render('{{ template "pagerduty.tradeops.summary" . }}', data)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("pad", [0, 1, 2, 3])
def test_the_pagerduty_summary_is_cut_to_1024_characters(tmp_path: Path, pad: int) -> None:
    """A huge description, with multi-byte characters where the cut falls (each
    of the offsets lands it on another byte of a character)."""
    description = "x" * pad + "€🚨 drift " * 2000 + "end"
    text = summary(tmp_path, description)  # decoding fails on a character cut in two
    assert len(text) <= 1024
    assert len(text.encode("utf-8")) <= 1024
    assert text.endswith("...")
    assert "\ufffd" not in text
    assert text.startswith("[FIRING:1] BigAlert target=t1: A big alert. " + "x" * pad + "€🚨")


def test_the_pagerduty_summary_is_kept_whole_up_to_1024(tmp_path: Path) -> None:
    prefix = len(summary(tmp_path, "d").encode("utf-8")) - 1
    exact = "d" * (1024 - prefix)
    assert summary(tmp_path, exact).endswith(exact)
    assert len(summary(tmp_path, exact)) == 1024
    longer = summary(tmp_path, exact + "d")
    assert len(longer) == 1024
    assert longer.endswith("...")


def test_the_pagerduty_summary_is_one_line(tmp_path: Path) -> None:
    text = summary(tmp_path, "first line\n  second line\n")
    assert "\n" not in text.strip()
    assert text.endswith("first line second line")


def test_a_big_group_lists_ten_alerts_in_slack_and_links_the_rest(tmp_path: Path) -> None:
    alerts = [alert(f"broker {i} down", target="t1", broker_id=str(i)) for i in range(25)]
    data = notification(tmp_path, alerts)
    result = am.render('{{ template "slack.tradeops.text" . }}', data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n• `") == 10
    assert "• … 25 firing in all: <https://alertmanager.tradeops.example/#/alerts?" in result.stdout
    title = am.render('{{ template "slack.tradeops.title" . }}', data).stdout
    assert title == "[FIRING:25] CRITICAL BigAlert target=t1"
