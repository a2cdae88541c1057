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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from aiohttp import web

from .payloads import (
    validate_pagerduty,
    validate_slack,
    validate_webhook,
)
from .services import LOOPBACK

REPO = Path(__file__).resolve().parent.parent
SinkName = Literal["slack", "pagerduty", "heartbeat"]
TARGET_LABELS = ("target", "session", "group")
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
