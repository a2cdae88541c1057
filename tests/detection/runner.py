"""Runs the chain through its phases and measures: a quiet window on a healthy
stack, the faults (each phase's at the same time), and a closed market.

A fault is measured from the moment it is injected to the arrival of the alert at
every receiver its routes name (PagerDuty and Slack for a page, Slack for a
warning), then from the end of the heal to the resolve at every receiver that sends resolves.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bundle.check import Rule, load_rules
from bundle.routes import Route, prom_duration, receiver_integrations, routes_for
from stack.chain import Chain, Speed
from stack.sinks import Notification

from .faults import Fault

SINK_OF = {"slack": "slack", "pagerduty": "pagerduty", "webhook": "heartbeat"}


@dataclass(frozen=True)
class Delivery:
    """Where a notification must arrive: the stand-in and the receiver as it sees it
    (a Slack channel, a PagerDuty receiver's name, a webhook receiver's name)."""

    sink: str
    seen_as: str
    resolves: bool


@dataclass
class Outcome:
    """What one fault did."""

    fault: Fault
    deliveries: list[Delivery]
    bound: float
    resolve_bound: float
    detected: dict[Delivery, float] = field(default_factory=dict)
    resolved: dict[Delivery, float] = field(default_factory=dict)
    unwanted: list[str] = field(default_factory=list)
    error: str = ""
    heal_seconds: float = 0.0
    """How long the heal took (a restart, a consumer rejoining its group)."""

    @property
    def detection(self) -> float | None:
        """Seconds to the last expected arrival (None if one never came)."""
        if len(self.detected) < len(self.deliveries):
            return None
        return max(self.detected.values())

    @property
    def resolution(self) -> float | None:
        """Seconds from the heal to the last expected resolve."""
        wanted = [d for d in self.deliveries if d.resolves]
        if any(d not in self.resolved for d in wanted):
            return None
        return max((self.resolved[d] for d in wanted), default=0.0)


def deliveries(config: Mapping[str, Any], routes: list[Route]) -> list[Delivery]:
    """The (stand-in, receiver) pairs the routes deliver to."""
    integrations = receiver_integrations(config)
    receivers = {str(r["name"]): r for r in config.get("receivers") or []}
    out: list[Delivery] = []
    for route in routes:
        for i, integration in enumerate(integrations[route.receiver]):
            entry = receivers[route.receiver][f"{integration.kind}_configs"][i]
            seen = str(entry.get("channel", route.receiver))
            out.append(Delivery(SINK_OF[integration.kind], seen, integration.send_resolved))
    return out


def rule_of(rules_dir: Any, name: str) -> Rule:
    """The alerting rule ``name`` as built for the chain."""
    for rule in load_rules(rules_dir):
        if rule.is_alert and rule.name == name:
            return rule
    raise KeyError(name)


def detection_bound(speed: Speed, rule: Rule, group_wait: float, delay: float) -> float:
    """The latest the alert may arrive: its condition holds after ``delay``; the next
    probe run starts within an interval and ends within its deadline; the next scrape
    and evaluation follow within an interval each; ``for:`` then runs, ending at an
    evaluation (one more interval); Alertmanager waits the group wait; plus slack."""
    s = speed
    return (
        delay
        + s.interval
        + s.timeout
        + 3 * s.interval
        + prom_duration(rule.body.get("for", "0s"))
        + group_wait
        + s.slack
    )


_RANGE = re.compile(r"\[(\d+(?:ms|[smhd]))\]")


def longest_range(rule: Rule) -> float:
    """The longest range (``[5m]``) of the rule's expression, seconds (0 if none):
    an ``increase(...[w]) > 0`` stays true for ``w`` after the last increase."""
    return max((prom_duration(r) for r in _RANGE.findall(rule.body["expr"])), default=0.0)


def resolve_bound(speed: Speed, rule: Rule, group_interval: float) -> float:
    """The latest the resolve may arrive after the heal: a probe run, a scrape, the
    rule's longest range draining, an evaluation, the group's next flush (one group
    interval), plus slack."""
    s = speed
    return s.interval + s.timeout + 2 * s.interval + longest_range(rule) + group_interval + s.slack


class Run:
    """The chain and what the phases measured."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.outcomes: list[Outcome] = []
        self.quiet: list[Notification] = []
        self.quiet_seconds = 0.0
        self.watchdog_pings = 0
        self.startup: list[Notification] = []

    def labels(self, fault: Fault) -> dict[str, str]:
        """The fault's labels with ``@name`` resolved to the address of that service."""
        return {
            k: getattr(self.chain, v[1:]).address if v.startswith("@") else v
            for k, v in fault.labels.items()
        }

    def about(self, fault: Fault, n: Notification) -> bool:
        """True if ``n`` names every label of the fault."""
        return all(n.labels.get(k) == v or n.mentions(v) for k, v in self.labels(fault).items())

    def outcome(self, fault: Fault) -> Outcome:
        """The expected deliveries and bounds of a fault, before it runs."""
        rule = rule_of(self.chain.root / "rules", fault.alert)
        labels = {"alertname": fault.alert, **rule.body.get("labels", {}), **self.labels(fault)}
        routes = routes_for(self.chain.wired.config, labels)
        return Outcome(
            fault,
            deliveries(self.chain.wired.config, routes),
            detection_bound(
                self.chain.speed,
                rule,
                max(r.group_wait for r in routes),
                fault.delay(self.chain.speed),
            ),
            resolve_bound(self.chain.speed, rule, max(r.group_interval for r in routes)),
        )

    async def fault(self, fault: Fault) -> Outcome:
        """Inject, wait for every delivery, heal, wait for every resolve."""
        out = self.outcome(fault)
        sinks = self.chain.sinks
        try:
            start = time.monotonic()
            await fault.inject(self.chain)
            await asyncio.gather(
                *(
                    self._arrival(out, d, "firing", start, out.bound, out.detected)
                    for d in out.deliveries
                )
            )
            out.unwanted = [
                n.line()
                for n in sinks.notifications
                if n.received >= start
                and self.about(fault, n)
                and any(a.startswith(fault.silent) for a in n.alertnames if fault.silent)
            ]
            healing = time.monotonic()
            await fault.heal(self.chain)
            out.heal_seconds = time.monotonic() - healing
            await asyncio.gather(
                *(
                    self._arrival(out, d, "resolved", healing, out.resolve_bound, out.resolved)
                    for d in out.deliveries
                    if d.resolves
                )
            )
            # the resolve is the monitoring's once the service is back: from the heal's end
            out.resolved = {d: max(0.0, t - out.heal_seconds) for d, t in out.resolved.items()}
        except Exception as exc:  # recorded; the test of this fault reports it
            out.error = f"{type(exc).__name__}: {exc}"
        return out

    async def _arrival(
        self,
        out: Outcome,
        d: Delivery,
        status: str,
        since: float,
        bound: float,
        into: dict[Delivery, float],
    ) -> None:
        def match(n: Notification) -> bool:
            return (
                n.received >= since
                and n.sink == d.sink
                and n.receiver == d.seen_as
                and n.status == status
                and out.fault.alert in n.alertnames
                and self.about(out.fault, n)
            )

        # wait past the bound, so that a late arrival is measured, not just missed
        try:
            found = await self.chain.sinks.wait_for(match, 2 * bound + 30)
        except TimeoutError:
            same = [
                n.line() for n in self.chain.sinks.notifications if out.fault.alert in n.alertnames
            ]
            raise TimeoutError(
                f"no {status} {out.fault.alert} at {d.sink} {d.seen_as} within"
                f" {2 * bound + 30:.0f} s; {out.fault.alert} notifications: {same or 'none'}"
            ) from None
        into[d] = found[0].received - since

    async def phases(self, quiet_seconds: float, faults: tuple[Fault, ...]) -> None:
        """The quiet window, then the faults phase by phase."""
        await self.quiet_window(quiet_seconds)
        for phase in sorted({f.phase for f in faults}):
            batch = [f for f in faults if f.phase == phase]
            self.outcomes += await asyncio.gather(*(self.fault(f) for f in batch))

    def restarted(self, n: Notification) -> bool:
        """True if ``n`` is a RedisRestarted that a real start of that server explains
        (it started within the rule's window before the notification)."""
        server = self.chain.redis_of(n.labels.get("target", ""))
        if "RedisRestarted" not in n.alertnames or server is None:
            return False
        rule = rule_of(self.chain.root / "rules", "RedisRestarted")
        (window,) = re.findall(r"< (\d+)", rule.body["expr"])
        return n.received - server.started_at <= float(window) + self.chain.speed.slack

    def unexplained(self, since: float) -> list[Notification]:
        """Firing notifications since ``since`` but the Watchdog and explained restarts."""
        return [
            n
            for n in self.chain.sinks.notifications
            if n.received >= since
            and n.status == "firing"
            and "Watchdog" not in n.alertnames
            and not self.restarted(n)
        ]

    async def quiet_window(self, seconds: float) -> None:
        """From the chain's start for ``seconds``: what reaches the stand-ins but the
        Watchdog and the warnings of servers that did just start. A third of the way
        in, the exporter misses one scrape (stopped for one interval); halfway, with
        the shipped timings, it restarts (with the scaled ones a restart outlasts the
        scaled ``for:`` and pages, as it should)."""
        chain, s = self.chain, self.chain.speed
        await asyncio.sleep(max(0.0, chain.started + seconds / 3 - time.monotonic()))
        await asyncio.to_thread(chain.exporter_a.pause)
        await asyncio.sleep(s.interval * 1.5)
        await asyncio.to_thread(chain.exporter_a.resume)
        if s.time_scale == 1:
            await asyncio.sleep(max(0.0, chain.started + seconds / 2 - time.monotonic()))
            await asyncio.to_thread(chain.exporter_a.stop)
            await asyncio.to_thread(chain.exporter_a.start)
        await asyncio.sleep(max(0.0, chain.started + seconds - time.monotonic()))
        self.quiet_seconds = time.monotonic() - chain.started
        self.quiet = self.unexplained(chain.started)
        seen = chain.sinks.notifications
        self.watchdog_pings = sum("Watchdog" in n.alertnames for n in seen)
        self.startup = [n for n in seen if self.restarted(n)]


def table(outcomes: list[Outcome]) -> str:
    """The detection table (Markdown)."""
    rows = [
        "| fault | alert | receivers | detected (s) | bound (s) | healed in (s) | resolved (s)"
        " | bound (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        receivers = ", ".join(sorted({f"{d.sink} {d.seen_as}" for d in o.deliveries}))
        det = "missed" if o.detection is None else f"{o.detection:.1f}"
        res = "missed" if o.resolution is None else f"{o.resolution:.1f}"
        rows.append(
            f"| {o.fault.name} | {o.fault.alert} | {receivers} | {det} | {o.bound:.0f}"
            f" | {o.heal_seconds:.1f} | {res} | {o.resolve_bound:.0f} |"
        )
    return "\n".join(rows) + "\n"
