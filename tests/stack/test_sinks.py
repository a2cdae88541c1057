"""Tests of our own stand-ins for Slack, PagerDuty and the heartbeat endpoint
(stack/sinks.py), not of Alertmanager: good and bad payloads reach the
validators and the real HTTP server, which must accept what Slack's incoming
webhook and PagerDuty's Events API v2 accept and refuse, with their status
codes and error texts, what they refuse. The delivery tests
(tests/alertmanager/test_delivery.py) rely on these verdicts."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from stack.payloads import validate_pagerduty, validate_slack, validate_webhook
from stack.sinks import Sinks

KEY = "0123456789abcdef0123456789abcdef"

# What Alertmanager 0.25's Slack integration sends (notify/slack/slack.go).
SLACK_GOOD: dict[str, Any] = {
    "channel": "#trading-oncall",
    "username": "Alertmanager",
    "attachments": [
        {
            "title": "[FIRING:1] RedisDown",
            "title_link": "http://127.0.0.1:9093/#/alerts?receiver=oncall",
            "text": "*RedisDown* target=cache\nA Redis server does not answer.",
            "fallback": "[FIRING:1] RedisDown",
            "callback_id": "",
            "footer": "",
            "color": "danger",
            "mrkdwn_in": ["fallback", "pretext", "text"],
            "fields": [{"title": "severity", "value": "critical", "short": True}],
            "actions": [
                {"type": "button", "text": "Runbook", "url": "https://runbooks.example/R.md"}
            ],
        }
    ],
}

# What Alertmanager 0.25's PagerDuty integration sends (notify/pagerduty/pagerduty.go).
PD_GOOD: dict[str, Any] = {
    "routing_key": KEY,
    "dedup_key": "a" * 64,
    "event_action": "trigger",
    "payload": {
        "summary": "[FIRING:1] RedisDown cache: A Redis server does not answer.",
        "source": "tradeops",
        "severity": "critical",
        "class": "RedisDown",
        "component": "redis",
        "group": "redis",
        "custom_details": {"firing": "target=cache", "num_firing": "1"},
    },
    "client": "Alertmanager",
    "client_url": "http://127.0.0.1:9093/",
    "links": [{"href": "https://runbooks.example/RedisDown.md", "text": "Runbook"}],
    "images": [],
}

WEBHOOK_GOOD: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}/{alertname="Watchdog"}:{alertname="Watchdog"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "deadman",
    "groupLabels": {"alertname": "Watchdog"},
    "commonLabels": {"alertname": "Watchdog", "severity": "none"},
    "commonAnnotations": {"summary": "The alerting pipeline is alive."},
    "externalURL": "http://127.0.0.1:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "Watchdog", "severity": "none"},
            "annotations": {},
            "startsAt": "2026-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": "abc",
        }
    ],
}


def edited(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``a.b.0.c`` set to ``value`` (``...`` deletes it)."""
    doc = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return doc


def test_slack_accepts_what_alertmanager_sends() -> None:
    assert validate_slack(SLACK_GOOD) is None
    assert validate_slack({"text": "plain text only"}) is None
    assert validate_slack({"blocks": [{"type": "section", "text": {"type": "mrkdwn"}}]}) is None
    assert validate_slack(edited(SLACK_GOOD, "attachments.0.color", "#FF0000")) is None
    assert validate_slack(edited(SLACK_GOOD, "channel", "C024BE91L")) is None


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        ([1, 2], "invalid_payload", "JSON object"),
        ({"text": 5}, "invalid_payload", "text: must be a string"),
        ({"attachments": {"title": "x"}}, "invalid_payload", "attachments: must be a list"),
        ({}, "no_text", "no text"),
        ({"text": "  ", "attachments": []}, "no_text", "no text"),
        (
            {"attachments": [{"title": "", "text": "", "fallback": "x", "footer": ""}]},
            "no_text",
            "no text",
        ),
        (edited(SLACK_GOOD, "attachments.0.color", "red"), "invalid_payload", "color"),
        (edited(SLACK_GOOD, "attachments.0.title_link", "/a"), "invalid_payload", "title_link"),
        (edited(SLACK_GOOD, "attachments.0.fields.0.short", "yes"), "invalid_payload", "short"),
        (edited(SLACK_GOOD, "attachments.0.actions.0.url", ...), "invalid_payload", "needs a url"),
        (edited(SLACK_GOOD, "attachments.0.actions.0.text", ""), "invalid_payload", "needs text"),
        (edited(SLACK_GOOD, "attachments.0.actions.0.type", "link"), "invalid_payload", "type"),
        (edited(SLACK_GOOD, "attachments.0.mrkdwn_in", "text"), "invalid_payload", "mrkdwn_in"),
        (edited(SLACK_GOOD, "icon_emoji", "fire"), "invalid_payload", "icon_emoji"),
        ({"text": "x" * 40_001}, "msg_too_long", "40001"),
        ({"attachments": [{"text": "x"}] * 101}, "too_many_attachments", "101"),
        (edited(SLACK_GOOD, "channel", "trading oncall"), "channel_not_found", "channel"),
    ],
)
def test_slack_refuses_what_slack_refuses(body: Any, code: str, detail: str) -> None:
    verdict = validate_slack(body)
    assert verdict is not None
    assert verdict[0] == code
    assert detail in "; ".join(verdict[1])


def test_pagerduty_accepts_trigger_resolve_and_acknowledge() -> None:
    assert validate_pagerduty(PD_GOOD, [KEY]) == []
    resolve = {"routing_key": KEY, "dedup_key": "k", "event_action": "resolve"}
    assert validate_pagerduty(resolve, [KEY]) == []
    assert validate_pagerduty({**resolve, "event_action": "acknowledge"}, [KEY]) == []
    # Alertmanager sends the payload with a resolve too; PagerDuty ignores it there
    assert validate_pagerduty(edited(PD_GOOD, "event_action", "resolve"), [KEY]) == []
    assert validate_pagerduty(edited(PD_GOOD, "payload.summary", "x" * 1024), [KEY]) == []
    for severity in ("critical", "error", "warning", "info"):
        assert validate_pagerduty(edited(PD_GOOD, "payload.severity", severity), [KEY]) == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("not an object", "not a JSON object"),
        (edited(PD_GOOD, "routing_key", "f" * 32), "Invalid routing key"),
        (edited(PD_GOOD, "routing_key", ...), "'routing_key' is missing"),
        (edited(PD_GOOD, "event_action", ...), "'event_action' is missing"),
        (edited(PD_GOOD, "event_action", "alert"), "'event_action' must be one of"),
        (edited(PD_GOOD, "dedup_key", "d" * 256), "longer than 255"),
        (edited(PD_GOOD, "dedup_key", 7), "'dedup_key' must be a non-empty string"),
        (
            {"routing_key": KEY, "event_action": "resolve"},
            "'dedup_key' is required to resolve",
        ),
        (edited(PD_GOOD, "payload", ...), "'payload' is missing"),
        (edited(PD_GOOD, "payload.summary", ""), "'payload.summary' is missing or blank"),
        (edited(PD_GOOD, "payload.summary", "x" * 1025), "longer than 1024"),
        (edited(PD_GOOD, "payload.source", ...), "'payload.source' is missing"),
        (edited(PD_GOOD, "payload.severity", "high"), "'payload.severity' must be one of"),
        (edited(PD_GOOD, "payload.severity", ...), "'payload.severity' must be one of"),
        (edited(PD_GOOD, "payload.component", 3), "component: must be a string"),
        (edited(PD_GOOD, "payload.timestamp", "yesterday"), "ISO 8601"),
        (edited(PD_GOOD, "links.0.href", "runbooks/R.md"), "'links[0].href'"),
        (edited(PD_GOOD, "links", {"href": "https://x"}), "'links' must be a list"),
        (
            edited(PD_GOOD, "images", [{"src": "http://grafana.example/p.png"}]),
            "'images[0].src' must be an https URL",
        ),
        (edited(PD_GOOD, "client_url", "nowhere"), "client_url"),
    ],
)
def test_pagerduty_refuses_what_pagerduty_refuses(body: Any, error: str) -> None:
    problems = validate_pagerduty(body, [KEY])
    assert any(error in p for p in problems), problems


def test_pagerduty_refuses_events_over_512_kb() -> None:
    assert "larger than 512000" in validate_pagerduty(PD_GOOD, [KEY], size=512_001)[0]


def test_webhook_messages_must_be_alertmanager_version_4() -> None:
    assert validate_webhook(WEBHOOK_GOOD) == []
    assert validate_webhook(edited(WEBHOOK_GOOD, "version", "3")) == ["version: expected '4'"]
    assert "alerts: must be a non-empty list" in validate_webhook(
        edited(WEBHOOK_GOOD, "alerts", [])
    )
    assert validate_webhook(edited(WEBHOOK_GOOD, "alerts.0.status", "gone")) == [
        "alerts[0].status: expected firing or resolved"
    ]


@pytest.fixture
async def sinks() -> AsyncIterator[Sinks]:
    s = await Sinks(routing_keys={KEY: "pager"}).start()
    yield s
    await s.stop()


async def _post(url: str, body: Any) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers={"Content-Type": "application/json"}) as resp,
    ):
        return resp.status, await resp.text()


async def test_the_server_answers_and_records_like_slack_and_pagerduty(sinks: Sinks) -> None:
    before = time.monotonic()
    assert await _post(sinks.slack_url("T0/B0/x"), SLACK_GOOD) == (200, "ok")
    status, text = await _post(sinks.slack_url("T0/B0/x"), {})
    assert (status, text.split(":")[0]) == (400, "no_text")
    assert await _post(sinks.slack_url("T0/B0/x"), b"{not json") == (
        400,
        "invalid_payload: the body must be a JSON object",
    )

    status, text = await _post(sinks.pagerduty_url, PD_GOOD)
    assert status == 202
    assert json.loads(text) == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": PD_GOOD["dedup_key"],
    }
    status, text = await _post(sinks.pagerduty_url, edited(PD_GOOD, "routing_key", "nope"))
    assert status == 400
    assert json.loads(text) == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["Invalid routing key"],
    }
    resolve = edited(PD_GOOD, "event_action", "resolve")
    assert (await _post(sinks.pagerduty_url, resolve))[0] == 202

    assert await _post(sinks.heartbeat_url("deadman"), WEBHOOK_GOOD) == (200, "OK")
    assert (await _post(sinks.heartbeat_url("deadman"), {"version": "3"}))[0] == 400

    slack, page, resolved, beat = sinks.notifications
    assert (slack.sink, slack.receiver, slack.status) == ("slack", "#trading-oncall", "firing")
    assert slack.alertnames == ("RedisDown",)
    assert dict(slack.labels) == {"target": "cache"}
    assert slack.summary == "[FIRING:1] RedisDown"
    assert slack.received >= before
    assert (page.sink, page.receiver, page.status, page.event_action) == (
        "pagerduty",
        "pager",
        "firing",
        "trigger",
    )
    assert page.alertnames == ("RedisDown",) and page.summary.startswith("[FIRING:1]")
    assert (resolved.status, resolved.dedup_key) == ("resolved", page.dedup_key)
    assert sinks.incident(PD_GOOD["dedup_key"]) == "resolve"
    assert (beat.sink, beat.receiver, beat.status, beat.alertnames) == (
        "heartbeat",
        "deadman",
        "firing",
        ("Watchdog",),
    )
    assert [r.sink for r in sinks.rejections] == ["slack", "slack", "pagerduty", "heartbeat"]


async def test_a_heartbeat_ping_without_a_body_counts(sinks: Sinks) -> None:
    async with aiohttp.ClientSession() as session, session.get(sinks.heartbeat_url("hc")) as r:
        assert r.status == 200
    (beat,) = sinks.notifications
    assert (beat.receiver, beat.status, beat.alertnames) == ("hc", "unknown", ())


async def test_wait_for_sees_earlier_and_later_deliveries_and_says_what_came(
    sinks: Sinks,
) -> None:
    await _post(sinks.slack_url("a"), {"text": "first"})
    later = asyncio.create_task(_post(sinks.slack_url("a"), {"text": "second"}))
    found = await sinks.wait_for(lambda n: n.sink == "slack", timeout=5, count=2)
    await later
    assert [n.text for n in found] == ["first", "second"]
    with pytest.raises(TimeoutError, match=r"0 of 1 matching deliveries within 0.2s"):
        await sinks.wait_for(lambda n: n.sink == "pagerduty", timeout=0.2)


async def test_the_server_can_run_in_a_thread_of_its_own() -> None:
    s = Sinks().start_in_thread()
    try:
        assert await _post(s.slack_url("x"), {"text": "from another loop"}) == (200, "ok")
        (n,) = await s.wait_for(lambda n: n.mentions("another loop"), timeout=5)
        assert n.receiver == "x"
    finally:
        s.stop_thread()


async def test_callbacks_see_every_delivery_and_refusal() -> None:
    seen: list[str] = []
    s = await Sinks(
        on_notification=lambda n: seen.append(f"ok {n.receiver}"),
        on_rejection=lambda r: seen.append(f"refused {r.reason}"),
    ).start()
    try:
        await _post(s.slack_url("a"), {"text": "session=x2 target=cache: hello"})
        await _post(s.slack_url("a"), {})
    finally:
        await s.stop()
    assert seen == [
        "ok a",
        "refused no_text: no text, and no attachment or block with anything to show",
    ]
    assert dict(s.notifications[0].labels) == {"session": "x2", "target": "cache"}
