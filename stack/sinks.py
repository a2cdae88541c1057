"""Local stand-ins for where Alertmanager delivers: Slack's incoming webhook,
PagerDuty's Events API v2 and a dead-man's-switch heartbeat endpoint.

One aiohttp server on a free loopback port serves all three:

- ``POST /slack/<hook>``: an incoming webhook. The body is checked as Slack
  checks it (a JSON object; ``text``, ``attachments`` or ``blocks``; the types
  and formats of the fields Alertmanager's Slack integration sends) and
  answered ``200 ok`` or ``400 <error code>: <detail>``.
- ``POST /v2/enqueue``: PagerDuty Events API v2. ``routing_key`` must be one
  the caller registered (the key written into the ``routing_key_file``),
  ``event_action`` trigger/acknowledge/resolve, ``dedup_key``, and for a
  trigger ``payload.summary`` (at most 1,024 characters), ``payload.source``
  and ``payload.severity`` (critical/error/warning/info); optional
  ``component``, ``group``, ``class``, ``custom_details``, ``links`` and
  ``images``. Answered ``202 {"status": "success", "dedup_key": ...}`` or
  ``400 {"status": "invalid event", "errors": [...]}`` as PagerDuty does.
- ``/heartbeat/<name>``: a healthchecks-style ping (any method answers 200);
  a JSON body must be an Alertmanager webhook message, and a ping of a
  heartbeat given a token must carry it as a bearer credential (else 401).

Every accepted request becomes a :class:`Notification` (which endpoint and
receiver, firing or resolved, the alert names and target labels found, the
summary, the arrival time); every refused one a :class:`Rejection`. The records
are guarded by a lock, so the server may run in its own thread
(:meth:`Sinks.start_in_thread`) while tests wait on them from another loop with
:meth:`Sinks.wait_for`.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from aiohttp import web

from .services import LOOPBACK

REPO = Path(__file__).resolve().parent.parent
SinkName = Literal["slack", "pagerduty", "heartbeat"]

SLACK_MAX_TEXT = 40_000
SLACK_MAX_ATTACHMENTS = 100
SLACK_MAX_BLOCKS = 50
PAGERDUTY_MAX_SUMMARY = 1024
PAGERDUTY_MAX_DEDUP_KEY = 255
PAGERDUTY_MAX_EVENT_BYTES = 512_000
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
PAGERDUTY_ACTIONS = ("trigger", "acknowledge", "resolve")
TARGET_LABELS = ("target", "session", "group")
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
_STATUS_WORD = re.compile(r"\b(firing|resolved)\b", re.IGNORECASE)
_LABEL_IN_TEXT = re.compile(
    r"\b(" + "|".join(TARGET_LABELS) + r")\s?=\s?[\"']?([A-Za-z0-9][A-Za-z0-9_.:-]*)"
)


@dataclass(frozen=True)
class Notification:
    """One delivery that a stand-in accepted."""

    sink: SinkName
    path: str
    receiver: str
    """Slack: the channel (else the hook name); PagerDuty: the name registered with
    the routing key; heartbeat: the Alertmanager receiver named in the message."""
    status: str
    """``firing``, ``resolved``, ``acknowledged`` (PagerDuty) or ``unknown``."""
    alertnames: tuple[str, ...]
    labels: Mapping[str, str]
    """Target labels (``target``, ``session``, ``group``) found in the message."""
    summary: str
    text: str
    """Every human-readable string of the message, one per line: what to search."""
    body: Mapping[str, Any]
    received: float
    """``time.monotonic()`` at arrival."""
    received_at: float
    """``time.time()`` at arrival."""
    dedup_key: str | None = None
    event_action: str | None = None

    def mentions(self, value: str) -> bool:
        """True if ``value`` appears anywhere in the message's text."""
        return value in self.text

    def line(self, width: int = 160) -> str:
        """One line for a terminal: sink, receiver, status, alerts, target, summary
        (cut to ``width`` characters)."""
        names = ",".join(self.alertnames) or "?"
        where = "".join(f" {k}={v}" for k, v in self.labels.items())
        head = f"{self.sink:<9} {self.receiver:<18} {self.status:<8}"
        text = f"{head} {names}{where} — {self.summary}"
        return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class Rejection:
    """A request a stand-in refused, and why."""

    sink: SinkName
    path: str
    reason: str
    body: bytes
    received: float


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


# --- what a message says -------------------------------------------------------


def bundle_alertnames() -> frozenset[str]:
    """Every alert name of the bundle's rule files, plus the paging drill's."""
    names = {"PagingDrill"}
    for path in sorted((REPO / "rules").glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for group in doc.get("groups") or []:
            names.update(str(r["alert"]) for r in group.get("rules") or [] if "alert" in r)
    return frozenset(names)


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value, depth first."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _names_in(text: str, known: frozenset[str]) -> tuple[str, ...]:
    words = re.findall(r"[A-Za-z][A-Za-z0-9]+", text)
    seen: dict[str, None] = {}
    for w in words:
        if w in known:
            seen.setdefault(w)
    return tuple(seen)


def _labels_in(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in _LABEL_IN_TEXT.findall(text):
        found.setdefault(name, value.rstrip(".:"))
    return found


def _first_line(*candidates: Any) -> str:
    for c in candidates:
        if isinstance(c, str) and c.strip():
            return c.strip().splitlines()[0]
    return ""


# --- the server ----------------------------------------------------------------


@dataclass
class _Thread:
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop


@dataclass
class Sinks:
    """The three stand-ins on one loopback port, and what they received."""

    routing_keys: dict[str, str] = field(default_factory=dict)
    """PagerDuty routing key -> a name for it (e.g. the key file's name)."""
    heartbeat_tokens: dict[str, str] = field(default_factory=dict)
    """Heartbeat name -> the bearer token its pings must carry (none: any ping)."""
    alertnames: frozenset[str] = field(default_factory=bundle_alertnames)
    on_notification: Callable[[Notification], None] | None = None
    """Called (on the server's loop) for each accepted delivery."""
    on_rejection: Callable[[Rejection], None] | None = None
    """Called (on the server's loop) for each refused request."""
    host: str = LOOPBACK
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _notifications: list[Notification] = field(default_factory=list, repr=False)
    _rejections: list[Rejection] = field(default_factory=list, repr=False)
    _incidents: dict[str, str] = field(default_factory=dict, repr=False)
    _runner: web.AppRunner | None = field(default=None, repr=False)
    _thread: _Thread | None = field(default=None, repr=False)

    # addresses

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def slack_url(self, hook: str) -> str:
        """An incoming-webhook URL (what goes into an ``api_url_file``)."""
        return f"{self.url}/slack/{hook}"

    @property
    def pagerduty_url(self) -> str:
        """The Events API v2 endpoint (``url:`` of a ``pagerduty_configs`` entry)."""
        return f"{self.url}/v2/enqueue"

    def heartbeat_url(self, name: str) -> str:
        """A dead-man's-switch ping URL."""
        return f"{self.url}/heartbeat/{name}"

    def add_routing_key(self, key: str, name: str) -> None:
        """Accept PagerDuty events for ``key``; ``name`` identifies it in records."""
        with self._lock:
            self.routing_keys[key] = name

    def add_heartbeat_token(self, name: str, token: str) -> None:
        """Require ``Authorization: Bearer <token>`` on pings of heartbeat ``name``."""
        with self._lock:
            self.heartbeat_tokens[name] = token

    # records

    @property
    def notifications(self) -> list[Notification]:
        """Every accepted delivery so far, in arrival order."""
        with self._lock:
            return list(self._notifications)

    @property
    def rejections(self) -> list[Rejection]:
        """Every refused request so far."""
        with self._lock:
            return list(self._rejections)

    def incident(self, dedup_key: str) -> str | None:
        """PagerDuty: the last action seen for an incident (trigger/acknowledge/resolve)."""
        with self._lock:
            return self._incidents.get(dedup_key)

    def matching(self, predicate: Callable[[Notification], bool]) -> list[Notification]:
        """The deliveries for which ``predicate`` holds."""
        return [n for n in self.notifications if predicate(n)]

    async def wait_for(
        self, predicate: Callable[[Notification], bool], timeout: float, count: int = 1
    ) -> list[Notification]:
        """Wait until ``count`` deliveries (received at any time) match; the first
        ``count`` of them. Raises TimeoutError naming what did arrive. Works from
        any event loop, also while the server runs in its own thread."""
        end = time.monotonic() + timeout
        while True:
            found = self.matching(predicate)
            if len(found) >= count:
                return found[:count]
            if time.monotonic() >= end:
                seen = "\n  ".join(n.line() for n in self.notifications[-10:]) or "nothing"
                refused = "".join(f"\n  refused: {r.path}: {r.reason}" for r in self.rejections)
                raise TimeoutError(
                    f"{len(found)} of {count} matching deliveries within {timeout:g}s;"
                    f" last received:\n  {seen}{refused}"
                )
            await asyncio.sleep(0.02)

    # running

    async def start(self) -> Sinks:
        """Serve on the current loop (``port`` 0: a free one)."""
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/slack/{hook:.+}", self._slack)
        app.router.add_post("/v2/enqueue", self._pagerduty)
        app.router.add_route("*", "/heartbeat/{name:.+}", self._heartbeat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self) -> Sinks:
        """Serve on a loop of its own in a daemon thread (for synchronous fixtures)."""
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=run, name="sinks", daemon=True)
        thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        self._thread = _Thread(thread, loop)
        return self

    def stop_thread(self) -> None:
        """Stop a server started with :meth:`start_in_thread`."""
        if self._thread is not None:
            self._thread.loop.call_soon_threadsafe(self._thread.loop.stop)
            self._thread.thread.join(10)
            self._thread = None

    # handlers

    def _record(self, n: Notification) -> None:
        with self._lock:
            self._notifications.append(n)
            if n.dedup_key and n.event_action:
                self._incidents[n.dedup_key] = n.event_action
        if self.on_notification is not None:
            self.on_notification(n)

    def _reject(self, sink: SinkName, request: web.Request, reason: str, raw: bytes) -> None:
        rejection = Rejection(sink, request.path, reason, raw, time.monotonic())
        with self._lock:
            self._rejections.append(rejection)
        if self.on_rejection is not None:
            self.on_rejection(rejection)

    async def _slack(self, request: web.Request) -> web.Response:
        arrived, wall = time.monotonic(), time.time()
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        verdict = validate_slack(body)
        if verdict is not None:
            code, details = verdict
            reason = f"{code}: {'; '.join(details)}"
            self._reject("slack", request, reason, raw)
            return web.Response(status=400, text=reason)
        assert isinstance(body, dict)
        attachments = [a for a in body.get("attachments") or [] if isinstance(a, dict)]
        first = attachments[0] if attachments else {}
        text = "\n".join(_strings(body))
        status = _STATUS_WORD.search(
            " ".join(str(first.get(k, "")) for k in ("title", "pretext")) or ""
        ) or _STATUS_WORD.search(text)
        self._record(
            Notification(
                sink="slack",
                path=request.path,
                receiver=str(body.get("channel") or request.match_info["hook"]),
                status=status.group(1).lower() if status else "unknown",
                alertnames=_names_in(text, self.alertnames),
                labels=_labels_in(text),
                summary=_first_line(first.get("title"), body.get("text"), first.get("text")),
                text=text,
                body=body,
                received=arrived,
                received_at=wall,
            )
        )
        return web.Response(text="ok")

    async def _pagerduty(self, request: web.Request) -> web.Response:
        arrived, wall = time.monotonic(), time.time()
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._reject("pagerduty", request, "Invalid JSON", raw)
            return _pd_error("invalid request", "Event object is invalid", ["Invalid JSON"])
        with self._lock:
            keys = list(self.routing_keys)
        problems = validate_pagerduty(body, keys, len(raw))
        if problems:
            self._reject("pagerduty", request, "; ".join(problems), raw)
            return _pd_error("invalid event", "Event object is invalid", problems)
        dedup = body.get("dedup_key") or f"generated-{time.time_ns()}"
        payload = body.get("payload") or {}
        text = "\n".join(_strings(payload) + _strings(body.get("links")))
        action = str(body["event_action"])
        with self._lock:
            receiver = self.routing_keys[body["routing_key"]]
        status = {"trigger": "firing", "resolve": "resolved"}.get(action, "acknowledged")
        self._record(
            Notification(
                sink="pagerduty",
                path=request.path,
                receiver=receiver,
                status=status,
                alertnames=_names_in(text, self.alertnames),
                labels=_labels_in(text),
                summary=str(payload.get("summary", "")),
                text=text,
                body=body,
                received=arrived,
                received_at=wall,
                dedup_key=dedup,
                event_action=action,
            )
        )
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": dedup}, status=202
        )

    async def _heartbeat(self, request: web.Request) -> web.Response:
        arrived, wall = time.monotonic(), time.time()
        raw = await request.read()
        name = request.match_info["name"]
        with self._lock:
            token = self.heartbeat_tokens.get(name)
        if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
            self._reject("heartbeat", request, "missing or wrong bearer token", raw)
            return web.Response(status=401, text="missing or wrong bearer token")
        body: Any = {}
        if raw.strip():
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                body = None
            problems = validate_webhook(body)
            if problems:
                reason = "; ".join(problems)
                self._reject("heartbeat", request, reason, raw)
                return web.Response(status=400, text=reason)
        alerts = [a for a in body.get("alerts") or [] if isinstance(a, dict)]
        labels: dict[str, str] = {}
        for alert in alerts:
            for key in TARGET_LABELS:
                if key in alert["labels"]:
                    labels.setdefault(key, str(alert["labels"][key]))
        names = tuple(dict.fromkeys(str(a["labels"].get("alertname", "")) for a in alerts))
        annotations = body.get("commonAnnotations") or {}
        self._record(
            Notification(
                sink="heartbeat",
                path=request.path,
                receiver=str(body.get("receiver") or name),
                status=str(body.get("status") or "unknown"),
                alertnames=tuple(n for n in names if n),
                labels=labels,
                summary=str(annotations.get("summary", "")),
                text="\n".join(_strings(body)),
                body=body,
                received=arrived,
                received_at=wall,
            )
        )
        return web.Response(text="OK")


def _pd_error(status: str, message: str, errors: list[str]) -> web.Response:
    return web.json_response({"status": status, "message": message, "errors": errors}, status=400)
