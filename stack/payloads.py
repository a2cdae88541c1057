"""What Slack, PagerDuty's Events API v2 and Alertmanager's webhook accept.

Pure checks: a body in, problems out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

SLACK_MAX_TEXT = 40_000
SLACK_MAX_ATTACHMENTS = 100
SLACK_MAX_BLOCKS = 50
PAGERDUTY_MAX_SUMMARY = 1024
PAGERDUTY_MAX_DEDUP_KEY = 255
PAGERDUTY_MAX_EVENT_BYTES = 512_000
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
PAGERDUTY_ACTIONS = ("trigger", "acknowledge", "resolve")
"""The labels that name what an alert is about (config names, never addresses)."""

_SLACK_COLOR = re.compile(r"^(good|warning|danger|#[0-9A-Fa-f]{3}|#[0-9A-Fa-f]{6})$")
_SLACK_CHANNEL = re.compile(r"^([#@][^\s,]{1,80}|[CDGU][A-Z0-9]{2,})$")
_SLACK_EMOJI = re.compile(r"^:[a-z0-9_+'-]+:$")
_SLACK_ATTACHMENT_TEXT = (
    "fallback",
    "color",
    "pretext",
    "author_name",
    "title",
    "text",
    "footer",
    "callback_id",
)
_SLACK_ATTACHMENT_URLS = ("author_link", "author_icon", "title_link", "image_url", "thumb_url")
_SLACK_ATTACHMENT_URLS_ALL = (*_SLACK_ATTACHMENT_URLS, "footer_icon")


# --- validators (pure: a body in, problems out) --------------------------------


def _is_url(value: Any, schemes: tuple[str, ...] = ("http", "https")) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in schemes and bool(parts.netloc)


def _check_str(obj: Mapping[str, Any], key: str, where: str, problems: list[str]) -> None:
    if key in obj and not isinstance(obj[key], str):
        problems.append(f"{where}{key}: must be a string")


def _check_url(obj: Mapping[str, Any], key: str, where: str, problems: list[str]) -> None:
    value = obj.get(key)
    if value is None or value == "":
        return
    if not _is_url(value):
        problems.append(f"{where}{key}: must be an absolute http(s) URL")


def validate_slack(body: Any) -> tuple[str, list[str]] | None:
    """None if Slack would post this incoming-webhook body, else (error code, details).

    The codes are Slack's: ``invalid_payload``, ``no_text``,
    ``too_many_attachments``, ``msg_too_long``, ``channel_not_found``.
    """
    if not isinstance(body, dict):
        return "invalid_payload", ["the body must be a JSON object"]
    problems: list[str] = []
    for key in ("text", "channel", "username", "icon_emoji", "icon_url", "thread_ts"):
        _check_str(body, key, "", problems)
    if "link_names" in body and not isinstance(body["link_names"], bool | int):
        problems.append("link_names: must be a boolean")
    if isinstance(body.get("icon_emoji"), str) and not _SLACK_EMOJI.match(body["icon_emoji"]):
        problems.append("icon_emoji: must look like :name:")
    _check_url(body, "icon_url", "", problems)
    attachments = body.get("attachments")
    blocks = body.get("blocks")
    if attachments is not None and not isinstance(attachments, list):
        problems.append("attachments: must be a list")
        attachments = None
    if blocks is not None and not isinstance(blocks, list):
        problems.append("blocks: must be a list")
        blocks = None
    if problems:
        return "invalid_payload", problems
    text = body.get("text") or ""
    if len(text) > SLACK_MAX_TEXT:
        return "msg_too_long", [f"text: {len(text)} characters, at most {SLACK_MAX_TEXT}"]
    if attachments and len(attachments) > SLACK_MAX_ATTACHMENTS:
        return "too_many_attachments", [f"{len(attachments)} attachments"]
    visible = bool(text.strip())
    for i, att in enumerate(attachments or []):
        visible = _check_attachment(att, f"attachments[{i}].", problems) or visible
    for i, block in enumerate(blocks or []):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"blocks[{i}]: must be an object with a type")
        else:
            visible = True
    if blocks and len(blocks) > SLACK_MAX_BLOCKS:
        problems.append(f"blocks: {len(blocks)} blocks, at most {SLACK_MAX_BLOCKS}")
    if problems:
        return "invalid_payload", problems
    if not visible:
        return "no_text", ["no text, and no attachment or block with anything to show"]
    channel = body.get("channel")
    if channel is not None and not _SLACK_CHANNEL.match(channel):
        return "channel_not_found", [f"channel {channel!r}: not #name, @user or an ID"]
    return None


def _check_attachment(att: Any, where: str, problems: list[str]) -> bool:
    """Check one legacy attachment; True if it shows anything."""
    if not isinstance(att, dict):
        problems.append(f"{where[:-1]}: must be an object")
        return False
    for key in _SLACK_ATTACHMENT_TEXT:
        _check_str(att, key, where, problems)
    for key in _SLACK_ATTACHMENT_URLS_ALL:
        _check_str(att, key, where, problems)
        _check_url(att, key, where, problems)
    color = att.get("color")
    if isinstance(color, str) and color and not _SLACK_COLOR.match(color):
        problems.append(f"{where}color: good, warning, danger or #RRGGBB, not {color!r}")
    mrkdwn = att.get("mrkdwn_in")
    if mrkdwn is not None and (
        not isinstance(mrkdwn, list) or not all(isinstance(m, str) for m in mrkdwn)
    ):
        problems.append(f"{where}mrkdwn_in: must be a list of strings")
    shown = any(
        isinstance(att.get(k), str) and att[k].strip() for k in ("text", "title", "pretext")
    )
    fields = att.get("fields")
    if fields is not None:
        if not isinstance(fields, list):
            problems.append(f"{where}fields: must be a list")
        else:
            for j, f in enumerate(fields):
                shown = _check_field(f, f"{where}fields[{j}].", problems) or shown
    actions = att.get("actions")
    if actions is not None:
        if not isinstance(actions, list):
            problems.append(f"{where}actions: must be a list")
        else:
            for j, act in enumerate(actions):
                _check_action(act, f"{where}actions[{j}].", problems)
    return shown


def _check_field(f: Any, where: str, problems: list[str]) -> bool:
    if not isinstance(f, dict):
        problems.append(f"{where[:-1]}: must be an object")
        return False
    _check_str(f, "title", where, problems)
    _check_str(f, "value", where, problems)
    if "short" in f and not isinstance(f["short"], bool):
        problems.append(f"{where}short: must be a boolean")
    return any(isinstance(f.get(k), str) and f[k].strip() for k in ("title", "value"))


def _check_action(act: Any, where: str, problems: list[str]) -> None:
    if not isinstance(act, dict):
        problems.append(f"{where[:-1]}: must be an object")
        return
    for key in ("type", "text", "url", "style", "name", "value"):
        _check_str(act, key, where, problems)
    if act.get("type") not in ("button", "select"):
        problems.append(f"{where}type: must be button or select")
    if not (isinstance(act.get("text"), str) and act["text"].strip()):
        problems.append(f"{where}text: a button needs text")
    if act.get("style", "") not in ("", "default", "primary", "danger"):
        problems.append(f"{where}style: default, primary or danger")
    if act.get("type") == "button" and not (act.get("url") or act.get("name")):
        problems.append(f"{where}url: a button needs a url (or a name for interactivity)")
    _check_url(act, "url", where, problems)


def validate_pagerduty(body: Any, routing_keys: Iterable[str], size: int = 0) -> list[str]:
    """Problems PagerDuty's Events API v2 would answer 400 for (empty: accepted)."""
    if size > PAGERDUTY_MAX_EVENT_BYTES:
        return [f"event is {size} bytes, larger than {PAGERDUTY_MAX_EVENT_BYTES}"]
    if not isinstance(body, dict):
        return ["Event object is not a JSON object"]
    problems: list[str] = []
    key = body.get("routing_key")
    if not isinstance(key, str) or not key.strip():
        problems.append("'routing_key' is missing or blank")
    elif key not in set(routing_keys):
        problems.append("Invalid routing key")
    action = body.get("event_action")
    if not isinstance(action, str) or not action:
        problems.append("'event_action' is missing or blank")
    elif action not in PAGERDUTY_ACTIONS:
        problems.append("'event_action' must be one of trigger, acknowledge or resolve")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not dedup):
        problems.append("'dedup_key' must be a non-empty string")
    elif isinstance(dedup, str) and len(dedup) > PAGERDUTY_MAX_DEDUP_KEY:
        problems.append(f"'dedup_key' is longer than {PAGERDUTY_MAX_DEDUP_KEY} characters")
    if action in ("acknowledge", "resolve") and not dedup:
        problems.append(f"'dedup_key' is required to {action} an alert")
    payload = body.get("payload")
    if action == "trigger":
        _check_payload(payload, problems)
    elif payload is not None and not isinstance(payload, dict):
        problems.append("'payload' must be an object")
    for key_ in ("client", "client_url"):
        _check_str(body, key_, "", problems)
    _check_url(body, "client_url", "", problems)
    _check_links(body.get("links"), problems)
    _check_images(body.get("images"), problems)
    return problems


def _check_payload(payload: Any, problems: list[str]) -> None:
    if not isinstance(payload, dict):
        problems.append("'payload' is missing or not an object")
        return
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        problems.append("'payload.summary' is missing or blank")
    elif len(summary) > PAGERDUTY_MAX_SUMMARY:
        problems.append(f"'payload.summary' is longer than {PAGERDUTY_MAX_SUMMARY} characters")
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append("'payload.source' is missing or blank")
    severity = payload.get("severity")
    if severity not in PAGERDUTY_SEVERITIES:
        problems.append("'payload.severity' must be one of critical, error, warning or info")
    for key in ("component", "group", "class"):
        _check_str(payload, key, "'payload.", problems)
    ts = payload.get("timestamp")
    if ts is not None:
        try:
            datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
        except ValueError:
            problems.append("'payload.timestamp' must be an ISO 8601 timestamp")


def _check_links(links: Any, problems: list[str]) -> None:
    if links is None:
        return
    if not isinstance(links, list):
        problems.append("'links' must be a list")
        return
    for i, link in enumerate(links):
        if not isinstance(link, dict) or not _is_url(link.get("href")):
            problems.append(f"'links[{i}].href' must be an absolute URL")
        elif "text" in link and not isinstance(link["text"], str):
            problems.append(f"'links[{i}].text' must be a string")


def _check_images(images: Any, problems: list[str]) -> None:
    if images is None:
        return
    if not isinstance(images, list):
        problems.append("'images' must be a list")
        return
    for i, image in enumerate(images):
        if not isinstance(image, dict) or not _is_url(image.get("src"), ("https",)):
            problems.append(f"'images[{i}].src' must be an https URL")
        elif image.get("href") and not _is_url(image["href"]):
            problems.append(f"'images[{i}].href' must be an absolute URL")


def validate_webhook(body: Any) -> list[str]:
    """Problems with an Alertmanager webhook message (version 4), empty when sound."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object"]
    problems: list[str] = []
    if body.get("version") != "4":
        problems.append("version: expected '4'")
    if body.get("status") not in ("firing", "resolved"):
        problems.append("status: expected firing or resolved")
    for key in ("receiver", "groupKey", "externalURL"):
        if not isinstance(body.get(key), str):
            problems.append(f"{key}: must be a string")
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        if not isinstance(body.get(key), dict):
            problems.append(f"{key}: must be an object")
    alerts = body.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        problems.append("alerts: must be a non-empty list")
        return problems
    for i, alert in enumerate(alerts):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            problems.append(f"alerts[{i}]: must be an object with labels")
        elif alert.get("status") not in ("firing", "resolved"):
            problems.append(f"alerts[{i}].status: expected firing or resolved")
    return problems
