"""Alertmanager's route tree, walked as Alertmanager walks it.

Used by the paging drill (``bundle.drill``: where its alert goes and how long
the first notification waits) and by the delivery tests (the timings that
apply to an alert, read from the shipped file rather than restated). Time
intervals and inhibitions are not considered; ``amtool config routes test``
ignores them too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Alertmanager's own defaults for a route without timings.
DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0

_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}
_MATCHER = re.compile(
    r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(.*?))\s*$'
)


def prom_duration(value: str | int | float) -> float:
    """Seconds in a Prometheus duration such as ``1h30m`` or ``250ms``."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {value!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a route or an inhibition."""

    name: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``name="value"``, ``name=~"regex"``, ``name!=value``, ..."""
        m = _MATCHER.match(text)
        if not m:
            raise ValueError(f"not a matcher: {text!r}")
        raw = m.group(3) if m.group(3) is not None else m.group(4)
        value = re.sub(r"\\(.)", r"\1", raw)
        return cls(m.group(1), m.group(2), value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True if the label set satisfies the matcher (a missing label is "")."""
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = re.fullmatch(self.value, have) is not None
        return hit if self.op == "=~" else not hit


def route_matchers(route: Mapping[str, Any]) -> list[Matcher]:
    """A route's matchers (``matchers``, and the older ``match``/``match_re``)."""
    out: list[Matcher] = []
    for item in route.get("matchers") or []:
        out.extend(Matcher.parse(part) for part in _split_matchers(str(item)))
    out += [Matcher(k, "=", str(v)) for k, v in (route.get("match") or {}).items()]
    out += [Matcher(k, "=~", str(v)) for k, v in (route.get("match_re") or {}).items()]
    return out


def _split_matchers(text: str) -> list[str]:
    """``a="x", b=~"y"`` (or ``{...}``) -> its matchers, commas inside quotes kept."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    parts, current, quoted, escaped = [], "", False, False
    for ch in text:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            current += ch
            escaped = True
        elif ch == '"':
            current += ch
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return [p for p in parts if p.strip()]


@dataclass(frozen=True)
class Route:
    """Where an alert goes and the timings that apply there (inherited filled in)."""

    receiver: str
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    active_time_intervals: tuple[str, ...] = ()
    """The route's own (not inherited): it notifies only inside these."""
    mute_time_intervals: tuple[str, ...] = ()


def routes_for(config: Mapping[str, Any], labels: Mapping[str, str]) -> list[Route]:
    """The routes an alert with ``labels`` takes, in order, as Alertmanager matches
    them (first matching child unless ``continue``; the parent when none match).
    Time intervals and inhibitions are not considered."""
    root = config["route"]
    base = Route(
        receiver=str(root["receiver"]),
        group_by=tuple(root.get("group_by") or ()),
        group_wait=prom_duration(root.get("group_wait", DEFAULT_GROUP_WAIT)),
        group_interval=prom_duration(root.get("group_interval", DEFAULT_GROUP_INTERVAL)),
        repeat_interval=prom_duration(root.get("repeat_interval", DEFAULT_REPEAT_INTERVAL)),
    )
    return _walk(root, base, labels)


def _walk(node: Mapping[str, Any], inherited: Route, labels: Mapping[str, str]) -> list[Route]:
    here = Route(
        receiver=str(node.get("receiver", inherited.receiver)),
        group_by=tuple(node["group_by"]) if "group_by" in node else inherited.group_by,
        group_wait=prom_duration(node.get("group_wait", inherited.group_wait)),
        group_interval=prom_duration(node.get("group_interval", inherited.group_interval)),
        repeat_interval=prom_duration(node.get("repeat_interval", inherited.repeat_interval)),
        active_time_intervals=tuple(node.get("active_time_intervals") or ()),
        mute_time_intervals=tuple(node.get("mute_time_intervals") or ()),
    )
    found: list[Route] = []
    for child in node.get("routes") or []:
        if not all(m.matches(labels) for m in route_matchers(child)):
            continue
        found += _walk(child, here, labels)
        if not child.get("continue", False):
            break
    return found or [here]


# Alertmanager's defaults for send_resolved, by integration.
_SEND_RESOLVED = {"email": False, "slack": False, "wechat": False}


@dataclass(frozen=True)
class Integration:
    """One notifier of a receiver."""

    kind: str
    """``pagerduty``, ``slack``, ``webhook``, ..."""
    send_resolved: bool


def receiver_integrations(config: Mapping[str, Any]) -> dict[str, list[Integration]]:
    """Receiver name -> its integrations (an empty list: a receiver that sends nothing)."""
    out: dict[str, list[Integration]] = {}
    for receiver in config.get("receivers") or []:
        found = []
        for key, entries in receiver.items():
            if not key.endswith("_configs"):
                continue
            kind = key.removesuffix("_configs")
            for entry in entries or []:
                default = _SEND_RESOLVED.get(kind, True)
                found.append(Integration(kind, bool(entry.get("send_resolved", default))))
        out[str(receiver["name"])] = found
    return out
