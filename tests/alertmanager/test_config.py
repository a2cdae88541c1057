"""The shipped alertmanager/alertmanager.yml: amtool accepts it, it uses the
``matchers`` syntax only, every notifier says whether it sends resolved
messages, a critical page can leave within 30 s, and no secret is written in
alertmanager/ (only ``*_file`` fields, under /etc/alertmanager/secrets/)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import am

CONFIG = am.shipped_config()
RECEIVERS = {r["name"]: r for r in CONFIG["receivers"]}
NOTIFIER_KEYS = [
    "discord_configs",
    "email_configs",
    "opsgenie_configs",
    "pagerduty_configs",
    "pushover_configs",
    "slack_configs",
    "sns_configs",
    "telegram_configs",
    "victorops_configs",
    "webex_configs",
    "webhook_configs",
    "wechat_configs",
]
PAGING_KEYS = {"pagerduty_configs", "opsgenie_configs", "victorops_configs", "pushover_configs"}


def routes(route: dict[str, Any], inherited: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every route of the tree with the timings it inherits filled in."""
    timings = {
        k: route.get(k, inherited.get(k))
        for k in ("group_wait", "group_interval", "repeat_interval")
    }
    yield {**route, **timings}
    for child in route.get("routes") or []:
        yield from routes(child, timings)


ALL_ROUTES = list(routes(CONFIG["route"], {}))


def seconds(duration: str) -> float:
    """A Prometheus duration (``1h30m``, ``20s``, ``0s``) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


# --- amtool -------------------------------------------------------------------


def test_amtool_check_config_accepts_the_shipped_config(tmp_path: Path) -> None:
    config = am.local_config(tmp_path)
    result = am.run_amtool("check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_amtool_check_config_fails_on_a_broken_copy(tmp_path: Path) -> None:
    """The check can fail: a route to a receiver that does not exist."""
    text = am.CONFIG.read_text(encoding="utf-8").replace(
        "receiver: deadmans-switch", "receiver: deadmans-switchh", 1
    )
    result = am.run_amtool("check-config", str(am.local_config(tmp_path, text)))
    assert result.returncode != 0
    assert "deadmans-switchh" in result.stdout + result.stderr


def test_template_and_secret_paths_sit_under_the_two_prefixes() -> None:
    """The delivery tests and users rewrite /etc/alertmanager/{secrets,templates}/."""
    assert CONFIG["templates"] == [f"{am.TEMPLATES_PREFIX}*.tmpl"]
    files = [(p, v) for p, v in am.strings(CONFIG) if p.rsplit(".", 1)[-1].endswith("_file")]
    assert files, "no *_file field at all"
    for path, value in files:
        assert value.startswith(am.SECRETS_PREFIX), f"{path}: {value}"
    # one file per secret: two receivers never share a key by accident
    values = [v for _, v in files]
    assert len(values) == len(set(values)), values


# --- structure ----------------------------------------------------------------


def test_matchers_syntax_only() -> None:
    old = {"match", "match_re", "source_match", "source_match_re", "target_match"}
    old |= {"target_match_re"}

    def keys(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield str(k)
                yield from keys(v)
        elif isinstance(value, list):
            for v in value:
                yield from keys(v)

    assert old.isdisjoint(keys(CONFIG))
    for route in ALL_ROUTES:
        for m in route.get("matchers") or []:
            am.parse_quoted(m)
    for rule in CONFIG["inhibit_rules"]:
        for m in rule.get("source_matchers", []) + rule.get("target_matchers", []):
            am.parse_quoted(m)


def test_every_notifier_sets_send_resolved() -> None:
    for receiver in CONFIG["receivers"]:
        assert set(receiver) <= {"name", *NOTIFIER_KEYS}, receiver["name"]
        for key in NOTIFIER_KEYS:
            for notifier in receiver.get(key) or []:
                assert isinstance(notifier.get("send_resolved"), bool), (receiver["name"], key)
    deadman = RECEIVERS["deadmans-switch"]["webhook_configs"]
    assert [n["send_resolved"] for n in deadman] == [False]


def test_every_receiver_is_used_and_every_route_names_a_receiver() -> None:
    used = {r["receiver"] for r in ALL_ROUTES if "receiver" in r}
    assert used == set(RECEIVERS)


def test_the_null_receiver_is_the_only_silent_one() -> None:
    silent = {n for n, r in RECEIVERS.items() if not any(r.get(k) for k in NOTIFIER_KEYS)}
    assert silent == {"null"}
    assert CONFIG["route"]["receiver"] != "null"


def test_grouping_by_alert_name_and_what_identifies_a_target() -> None:
    group_by = CONFIG["route"]["group_by"]
    assert group_by[0] == "alertname"
    assert {"kind", "target", "session", "group", "table", "heartbeat", "stream", "job_id"} <= set(
        group_by
    )
    assert "..." not in group_by  # grouping by every label would page once per series


def paging(route: dict[str, Any]) -> bool:
    receiver = RECEIVERS[route["receiver"]]
    return any(receiver.get(k) for k in PAGING_KEYS)


def critical(route: dict[str, Any]) -> bool:
    return 'severity="critical"' in (route.get("matchers") or [])


def test_a_critical_page_leaves_within_30s() -> None:
    """A new group flushes after group_wait; an alert joining a notified group
    leaves at the next flush, at most group_interval later."""
    checked = [r for r in ALL_ROUTES if paging(r) or critical(r)]
    assert len([r for r in checked if paging(r)]) >= 2
    for route in checked:
        wait = seconds(route["group_wait"])
        interval = seconds(route["group_interval"])
        assert max(wait, interval) <= 30, route
        assert seconds(route["repeat_interval"]) >= interval, route


def test_the_watchdog_route_comes_first_and_pings_every_minute() -> None:
    first = CONFIG["route"]["routes"][0]
    assert first["matchers"] == ['alertname="Watchdog"']
    assert first["receiver"] == "deadmans-switch"
    assert not first.get("continue", False)
    assert seconds(first["group_wait"]) == 0
    assert seconds(first["group_interval"]) <= 60
    # repeat under group_interval: a flush a little early still sends
    assert seconds(first["repeat_interval"]) < seconds(first["group_interval"])


def test_time_intervals_have_a_zone_and_never_mute_a_page() -> None:
    names = {t["name"] for t in CONFIG.get("time_intervals") or []}
    for interval in CONFIG.get("time_intervals") or []:
        for spec in interval["time_intervals"]:
            assert spec.get("location"), interval["name"]
    for route in ALL_ROUTES:
        gated = (route.get("active_time_intervals") or []) + (
            route.get("mute_time_intervals") or []
        )
        assert set(gated) <= names
        if gated:
            assert not paging(route), route
            assert not critical(route), route


# --- no secret in alertmanager/ ------------------------------------------------

# Keys whose value is a secret: only their *_file form may appear.
SECRET_KEYS = {
    "api_url",
    "slack_api_url",
    "routing_key",
    "service_key",
    "api_key",
    "token",
    "bot_token",
    "bearer_token",
    "password",
    "auth_password",
    "auth_secret",
    "credentials",
    "client_secret",
    "secret_key",
    "api_secret",
    "user_key",
    "webhook_url",
}
SECRET_PATTERNS = {
    "Slack webhook": re.compile(r"hooks\.slack\.com/(services|workflows|triggers)/", re.I),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{6,}"),
    "credentials in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]+@", re.I),
    "token in a query": re.compile(
        r"[?&](token|key|secret|sig|signature|access_token|api_key|routing_key)=", re.I
    ),
    "PagerDuty-style key": re.compile(r"\b[a-f0-9]{32}\b"),
    "UUID": re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
    "bearer token": re.compile(r"\bBearer[ \t]+[A-Za-z0-9._~+/=-]{8,}"),
    "long random string": re.compile(
        r"(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{24,}"
    ),
}


def secret_problems(text: str, where: str) -> list[str]:
    """Inline secrets in one file of alertmanager/: secret-valued keys with a
    value, and secret-looking strings anywhere (comments included)."""
    problems = []
    if where.endswith((".yml", ".yaml")):
        for path, value in am.strings(yaml.safe_load(text)):
            key = path.rsplit(".", 1)[-1].split("[", 1)[0]
            if key in SECRET_KEYS and value.strip():
                problems.append(f"{where}: {path}: inline secret (use {key}_file)")
            if key == "url" and not value.startswith(("https://", "http://")):
                problems.append(f"{where}: {path}: not a URL")
    for name, pattern in SECRET_PATTERNS.items():
        for m in pattern.finditer(text):
            problems.append(f"{where}: {name}: {m.group(0)[:40]}")
    return problems


def alertmanager_files() -> list[Path]:
    return sorted(p for p in am.AM_DIR.rglob("*") if p.is_file())


def test_no_inline_secret_anywhere_in_alertmanager_dir() -> None:
    files = alertmanager_files()
    assert {p.name for p in files} >= {"alertmanager.yml", "slack.tmpl", "pagerduty.tmpl"}
    problems: list[str] = []
    for path in files:
        problems += secret_problems(path.read_text(encoding="utf-8"), str(path))
    assert problems == []


@pytest.mark.parametrize(
    "line",
    [
        "api_url: https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "routing_key: 0123456789abcdef0123456789abcdef",
        "service_key: whatever",
        "url: https://user:hunter2@hooks.example/ping",
        "url: https://hc-ping.com/1b4e28ba-2fa1-11d2-883f-0016cb0a1e7b",
        "url: https://relay.example/notify?token=abc",
        "bearer_token: abc",
        "password: abc",
        "credentials: abc",
        "slack_api_url: https://slack.example/x",
        "url: https://deadman.example/p/Zk3uQ8rT2vX9wY4pL6mN1bCq",
        "# a comment with xoxb-123456789-abcdefghij",
    ],
)
def test_the_secret_scan_catches(line: str) -> None:
    """Each of these, added to the config, fails the scan."""
    text = am.CONFIG.read_text(encoding="utf-8")
    indent = "    " if not line.startswith("#") else ""
    key, _, value = line.partition(": ")
    if line.startswith("#"):
        planted = text + "\n" + line + "\n"
    else:
        planted = text + f"\nextra:\n{indent}{key}: {value}\n"
    assert secret_problems(planted, "alertmanager.yml")


def test_the_secret_files_are_documented() -> None:
    doc = (am.REPO / "docs" / "alerting.md").read_text(encoding="utf-8")
    for _, value in am.strings(CONFIG):
        if value.startswith(am.SECRETS_PREFIX):
            assert value in doc, value
