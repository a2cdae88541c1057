"""A paging drill: a clearly labelled critical alert sent through a real
Alertmanager, so that it routes exactly like a real page, then resolved.

    python -m bundle.drill --alertmanager URL [--duration 60s] [--record-dir DIR]
                           [--label k=v ...] [--expect-integration pagerduty]

It posts ``PagingDrill`` (severity critical, area exporter, ``drill="true"``, a
unique ``drill_id``) to ``/api/v2/alerts``, reads back what Alertmanager reports
for it (``GET /api/v2/alerts?filter=drill_id="…"``: receivers, state, inhibited
or silenced by what), waits until the receivers' integrations have sent (from
Alertmanager's own ``alertmanager_notifications_total`` and
``…_failed_total``), resolves it after the duration (the alert posted again with
``endsAt``), waits for the resolve to be sent, prints the result and writes a
JSON record that the exporter's ``drills`` kind reads. Exit status 0 when the
drill succeeded, 1 when it failed (the record says why), 2 for bad arguments.

The notification counters are Alertmanager-wide: on a busy Alertmanager another
alert's notification can count for the drill. The drill proves the route, the
state and that the integrations sent without error; the person paged proves
the phone rang by acknowledging the incident.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import re
import secrets
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import yaml
from yarl import URL

from exporter.model import parse_duration

from .routes import Integration, receiver_integrations, routes_for

ALERTNAME = "PagingDrill"
RESERVED = ("alertname", "severity", "drill", "drill_id")
RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
FALLBACK_RUNBOOK_BASE = "https://runbooks.tradeops.example/"
FALLBACK_DASHBOARD = "https://grafana.tradeops.example/d/tradeops-overview"
GRACE_AFTER = 120.0
"""The drill alert's ``endsAt`` lies this far past its planned resolve: a drill
killed half-way resolves by itself."""
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_COUNTER = re.compile(
    r'^alertmanager_notifications(_failed)?_total\{[^}]*integration="([^"]+)"[^}]*\}\s+(\S+)$'
)

Print = Callable[[str], None]


class DrillFailed(Exception):
    """The drill cannot go on; the message is the record's ``reason``."""


@dataclass
class DrillResult:
    """What one drill did and found (the record, without credentials)."""

    drill_id: str
    alertmanager: str
    labels: dict[str, str]
    started: float
    finished: float = 0.0
    ok: bool = False
    reason: str | None = None
    receivers: list[str] = field(default_factory=list)
    integrations: dict[str, list[str]] = field(default_factory=dict)
    state: str | None = None
    inhibited_by: list[str] = field(default_factory=list)
    silenced_by: list[str] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    """Notifications per integration while the drill fired (Alertmanager-wide)."""
    failed: dict[str, int] = field(default_factory=dict)
    first_sent_after: float | None = None
    """Seconds from posting to the first notification of an expected integration."""
    resolved: bool = False
    resolve_sent: dict[str, int] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The JSON record (docs/alerting.md, "Paging drill")."""
        doc = asdict(self)
        doc["started"] = rfc3339(self.started)
        doc["finished"] = rfc3339(self.finished)
        doc["result"] = "ok" if self.ok else "failed"
        del doc["ok"]
        return {"format": 1, "kind": "paging_drill", **doc}


def rfc3339(t: float) -> str:
    """Unix seconds as UTC RFC 3339 with milliseconds."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public_url(url: str) -> str:
    """``url`` without user name and password (what may be printed and recorded)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """``k=v`` pairs; a bad or reserved name raises ValueError."""
    labels: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not _LABEL_NAME.match(name):
            raise ValueError(f"--label {item!r}: expected name=value")
        if name in RESERVED:
            raise ValueError(f"--label {name}: set by the drill itself")
        labels[name] = value
    return labels


def bundle_links() -> tuple[str, str]:
    """(runbook URL, dashboard URL) for the drill: the bundle's runbook base and the
    overview dashboard, as the built rules carry them on the Watchdog."""
    try:
        doc = yaml.safe_load((RULES_DIR / "exporter.yml").read_text(encoding="utf-8"))
        rules = [r for g in doc["groups"] for r in g["rules"]]
        ann = next(r["annotations"] for r in rules if r.get("alert") == "Watchdog")
        base = str(ann["runbook_url"]).removesuffix("Watchdog.md")
        return f"{base}{ALERTNAME}.md", str(ann["dashboard_url"])
    except (OSError, KeyError, StopIteration, TypeError, yaml.YAMLError):
        return f"{FALLBACK_RUNBOOK_BASE}{ALERTNAME}.md", FALLBACK_DASHBOARD


def drill_labels(drill_id: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The drill alert's labels: those of a critical page of the exporter area,
    marked as a drill."""
    labels = {"alertname": ALERTNAME, "severity": "critical", "area": "exporter"}
    labels.update(extra or {})
    labels.update({"drill": "true", "drill_id": drill_id})
    return labels


def drill_alert(
    labels: Mapping[str, str],
    starts: float,
    ends: float,
    duration: float,
    links: tuple[str, str] | None = None,
    who: str | None = None,
) -> dict[str, Any]:
    """The alert as posted to ``/api/v2/alerts``."""
    runbook, dashboard = links or bundle_links()
    who = who or f"{getpass.getuser()}@{socket.gethostname()}"
    return {
        "labels": dict(labels),
        "annotations": {
            "summary": "Paging drill: a test page, not an incident.",
            "description": (
                f"Paging drill {labels['drill_id']} started {rfc3339(starts)} by {who}: it"
                " proves that a critical page reaches on-call. Acknowledge it; it resolves"
                f" by itself after {duration:g}s. Nothing on the platform needs attention."
            ),
            "runbook_url": runbook,
            "dashboard_url": dashboard,
        },
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
    }


class Client:
    """The few Alertmanager API calls the drill makes."""

    def __init__(self, session: aiohttp.ClientSession, url: str, auth: aiohttp.BasicAuth | None):
        self.session = session
        self.base = public_url(url)
        self.auth = auth

    async def _get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.base + path, auth=self.auth) as resp:
            return resp.status, await resp.text()

    async def status(self) -> dict[str, Any]:
        """``GET /api/v2/status``: the running configuration among it."""
        code, text = await self._get("/api/v2/status")
        if code != 200:
            raise DrillFailed(f"Alertmanager at {self.base} answered {code} to /api/v2/status")
        doc: dict[str, Any] = json.loads(text)
        return doc

    async def post(self, alerts: list[dict[str, Any]]) -> None:
        """``POST /api/v2/alerts``."""
        async with self.session.post(
            self.base + "/api/v2/alerts", json=alerts, auth=self.auth
        ) as resp:
            if resp.status != 200:
                body = (await resp.text())[:200]
                raise DrillFailed(f"Alertmanager refused the drill alert ({resp.status}): {body}")

    async def alerts(self, filters: Sequence[str] = ()) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (active, silenced and inhibited) with label filters."""
        query = "&".join(f"filter={quote(f)}" for f in filters)
        code, text = await self._get("/api/v2/alerts" + (f"?{query}" if query else ""))
        if code != 200:
            raise DrillFailed(f"Alertmanager answered {code} to /api/v2/alerts")
        found: list[dict[str, Any]] = json.loads(text)
        return found

    async def counters(self) -> tuple[dict[str, float], dict[str, float]]:
        """Notifications sent and failed so far, by integration."""
        code, text = await self._get("/metrics")
        if code != 200:
            raise DrillFailed(f"Alertmanager answered {code} to /metrics")
        sent: dict[str, float] = {}
        failed: dict[str, float] = {}
        for line in text.splitlines():
            m = _COUNTER.match(line)
            if m:
                (failed if m.group(1) else sent)[m.group(2)] = float(m.group(3))
        return sent, failed


def _delta(now: Mapping[str, float], before: Mapping[str, float]) -> dict[str, int]:
    return {k: int(v - before.get(k, 0.0)) for k, v in sorted(now.items()) if v > before.get(k, 0)}


@dataclass
class DrillPlan:
    """What the running configuration says the drill will do."""

    receivers: list[str]
    integrations: dict[str, list[Integration]]
    group_wait: float
    group_interval: float

    def kinds(self, receivers: Sequence[str], resolved: bool = False) -> set[str]:
        """Integration kinds of ``receivers`` (those that send resolves, if asked)."""
        return {
            i.kind
            for r in receivers
            for i in self.integrations.get(r, [])
            if i.send_resolved or not resolved
        }


def plan(status: Mapping[str, Any], labels: Mapping[str, str]) -> DrillPlan:
    """The routes of the drill alert in the running configuration."""
    config = yaml.safe_load(status["config"]["original"])
    routes = routes_for(config, labels)
    return DrillPlan(
        receivers=[r.receiver for r in routes],
        integrations=receiver_integrations(config),
        group_wait=max(r.group_wait for r in routes),
        group_interval=max(r.group_interval for r in routes),
    )


async def run_drill(
    alertmanager: str,
    duration: float = 60.0,
    extra_labels: Mapping[str, str] | None = None,
    expect: Sequence[str] = ("pagerduty",),
    out: Print = print,
    timeout: float = 10.0,
    poll: float = 0.5,
) -> DrillResult:
    """Run one drill; never raises for a failed drill (the result says why)."""
    drill_id = secrets.token_hex(6)
    labels = drill_labels(drill_id, extra_labels)
    result = DrillResult(drill_id, public_url(alertmanager), labels, time.time())
    out(f"paging drill {drill_id} through {result.alertmanager}, firing for {duration:g}s")
    auth = aiohttp.BasicAuth.from_url(URL(alertmanager))
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        client = Client(session, alertmanager, auth)
        posted: list[dict[str, Any]] = []
        try:
            await _fire(client, result, duration, expect, out, poll, posted)
            await _resolve(client, result, posted[0], expect, out, poll)
            result.ok = True
        except DrillFailed as exc:
            result.reason = str(exc)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            what = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
            result.reason = f"Alertmanager at {result.alertmanager} is not reachable ({what})"
        finally:
            if posted and not result.resolved:
                await _resolve_quietly(client, posted[0])
    result.finished = time.time()
    out(f"result: {'ok' if result.ok else 'FAILED: ' + str(result.reason)}")
    return result


async def _fire(
    client: Client,
    result: DrillResult,
    duration: float,
    expect: Sequence[str],
    out: Print,
    poll: float,
    posted: list[dict[str, Any]],
) -> None:
    """Post the drill alert (into ``posted``), read it back, watch it being sent."""
    status = await client.status()
    drill_plan = plan(status, result.labels)
    # A group's first notification leaves after group_wait: resolving earlier
    # would send nothing at all.
    firing = max(duration, drill_plan.group_wait + 5.0)
    if firing > duration:
        out(f"  firing for {firing:g}s: the route's group_wait is {drill_plan.group_wait:g}s")
    sent0, failed0 = await client.counters()
    start = time.time()
    alert = drill_alert(result.labels, start, start + firing + GRACE_AFTER, firing)
    posted.append(alert)
    await client.post([alert])
    posted_at = time.monotonic()
    out(f"  posted {ALERTNAME} drill_id={result.drill_id} severity=critical")
    found = await _read_back(client, result, out, poll)
    integrations = {r: [i.kind for i in drill_plan.integrations.get(r, [])] for r in found}
    result.integrations = integrations
    routes = ", ".join(f"{r} ({', '.join(k) or 'no integration'})" for r, k in integrations.items())
    out(f"  Alertmanager reports: state {result.state}, receivers {routes}")
    if result.silenced_by:
        raise DrillFailed(f"the drill alert is silenced by {', '.join(result.silenced_by)}")
    if result.inhibited_by:
        raise DrillFailed(f"the drill alert is inhibited by {', '.join(result.inhibited_by)}")
    kinds = drill_plan.kinds(found)
    missing = [k for k in expect if k not in kinds]
    if not kinds or missing:
        what = " and ".join(missing) or "any integration"
        raise DrillFailed(f"the drill routes to {', '.join(found)}: none sends through {what}")
    wanted = [k for k in kinds if not expect or k in expect] or sorted(kinds)
    deadline = posted_at + firing
    while True:
        sent, failed = await client.counters()
        result.sent, result.failed = _delta(sent, sent0), _delta(failed, failed0)
        if all(result.sent.get(k) for k in wanted) and result.first_sent_after is None:
            result.first_sent_after = round(time.monotonic() - posted_at, 3)
            out(
                f"  sent after {result.first_sent_after:g}s: "
                + ", ".join(f"{k} +{n}" for k, n in result.sent.items())
                + " (Alertmanager-wide counters)"
            )
        bad = [k for k in wanted if result.failed.get(k)]
        if bad:
            raise DrillFailed(
                f"{', '.join(bad)} notifications failed during the drill (the Alertmanager log"
                " says why)"
            )
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(poll, max(0.0, deadline - time.monotonic())))
    if result.first_sent_after is None:
        unsent = [k for k in wanted if not result.sent.get(k)]
        raise DrillFailed(f"no {' or '.join(unsent)} notification was sent within {firing:g}s")


async def _read_back(client: Client, result: DrillResult, out: Print, poll: float) -> list[str]:
    """Wait until Alertmanager lists the drill alert; fill in what it reports."""
    end = time.monotonic() + 10.0
    mine: list[dict[str, Any]] = []
    while not mine:
        mine = await client.alerts([f'drill_id="{result.drill_id}"'])
        if not mine:
            if time.monotonic() > end:
                raise DrillFailed("Alertmanager accepted the drill alert but does not list it")
            await asyncio.sleep(poll)
    st = mine[0].get("status") or {}
    result.receivers = [str(r.get("name")) for r in mine[0].get("receivers") or []]
    result.state = str(st.get("state"))
    result.silenced_by = [str(s) for s in st.get("silencedBy") or []]
    inhibitors = [str(f) for f in st.get("inhibitedBy") or []]
    if inhibitors:
        names = {a.get("fingerprint"): a["labels"].get("alertname") for a in await client.alerts()}
        result.inhibited_by = [str(names.get(f) or f) for f in inhibitors]
    return result.receivers


async def _resolve(
    client: Client,
    result: DrillResult,
    alert: dict[str, Any],
    expect: Sequence[str],
    out: Print,
    poll: float,
) -> None:
    status = await client.status()
    drill_plan = plan(status, result.labels)
    sent0, failed0 = await client.counters()
    await client.post([{**alert, "endsAt": rfc3339(time.time())}])
    result.resolved = True
    resolved_at = time.monotonic()
    end = resolved_at + 10.0
    while await client.alerts([f'drill_id="{result.drill_id}"']):
        if time.monotonic() > end:
            raise DrillFailed("Alertmanager still lists the drill alert after resolving it")
        await asyncio.sleep(poll)
    wanted = sorted(k for k in drill_plan.kinds(result.receivers, resolved=True) if k in expect)
    out(f"  resolved; the resolve leaves within group_interval ({drill_plan.group_interval:g}s)")
    if not wanted:
        return
    end = resolved_at + drill_plan.group_interval + 10.0
    while True:
        sent, failed = await client.counters()
        result.resolve_sent = _delta(sent, sent0)
        if any(_delta(failed, failed0).get(k) for k in wanted):
            raise DrillFailed(f"sending the resolve through {', '.join(wanted)} failed")
        if all(result.resolve_sent.get(k) for k in wanted):
            after = time.monotonic() - resolved_at
            out(f"  resolve sent after {after:.1f}s: {', '.join(wanted)}")
            return
        if time.monotonic() > end:
            raise DrillFailed(
                f"the resolve was not sent through {', '.join(wanted)} within"
                f" {end - resolved_at:g}s: the incident may stay open"
            )
        await asyncio.sleep(poll)


async def _resolve_quietly(client: Client, alert: dict[str, Any]) -> None:
    """Best effort after a failure: do not leave a drill alert firing."""
    with contextlib.suppress(DrillFailed, aiohttp.ClientError, TimeoutError, OSError):
        await client.post([{**alert, "endsAt": rfc3339(time.time())}])


def write_record(result: DrillResult, directory: Path) -> Path:
    """Write the record atomically as ``paging-drill-<start>-<id>.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(result.started, UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"paging-drill-{stamp}-{result.drill_id}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result.record(), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bundle.drill", description=__doc__.split("\n")[0])
    p.add_argument("--alertmanager", required=True, help="Alertmanager base URL")
    p.add_argument("--duration", default="60s", help="how long the drill fires (default 60s)")
    p.add_argument("--record-dir", type=Path, help="write the drill's JSON record here")
    p.add_argument("--label", action="append", default=[], help="extra label k=v (repeatable)")
    p.add_argument(
        "--expect-integration",
        action="append",
        help="an integration the drill must page through (default pagerduty; repeatable)",
    )
    p.add_argument("--timeout", default="10s", help="timeout of each HTTP request (default 10s)")
    args = p.parse_args(argv)
    try:
        duration = parse_duration(args.duration)
        timeout = parse_duration(args.timeout)
        labels = parse_labels(args.label)
    except ValueError as exc:
        p.error(str(exc))
    if urlsplit(args.alertmanager).scheme not in ("http", "https"):
        p.error("--alertmanager: expected an http:// or https:// URL")
    expect = args.expect_integration or ["pagerduty"]
    result = asyncio.run(run_drill(args.alertmanager, duration, labels, expect, timeout=timeout))
    if args.record_dir is not None:
        path = write_record(result, args.record_dir)
        print(f"record: {path}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
