"""The event-bus health mapping: JSON paths in the runtime's health document to metrics.

A mapping entry names a field (its config name), a JSON path, a type and a unit.
The default mapping covers the runtime's event-bus snapshot; each of its fields
has its own metric family. Custom entries go to the generic ``eventbus_field``
(gauge) or ``eventbus_field_total`` (counter) families, labelled with their
name and base unit, so the metric catalogue stays static.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from ...catalogue import Family
from ...model import StrictModel
from . import metrics as M

Unit = Literal[
    "count",
    "seconds",
    "milliseconds",
    "microseconds",
    "nanoseconds",
    "bytes",
    "ratio",
    "timestamp",
    "bool",
]
FieldType = Literal["gauge", "counter"]
Segment = str | int

_SCALE = {"milliseconds": 1e-3, "microseconds": 1e-6, "nanoseconds": 1e-9, "seconds": 1.0}
_BASE_UNIT = {
    "count": "count",
    "bytes": "bytes",
    "ratio": "ratio",
    "timestamp": "timestamp_seconds",
    "bool": "bool",
    **dict.fromkeys(_SCALE, "seconds"),
}
_DIMENSION = {**{u: u for u in ("count", "bytes", "ratio", "timestamp", "bool")}}
_DIMENSION.update(dict.fromkeys(_SCALE, "duration"))
_MS_TIMESTAMP = 1e11  # a numeric timestamp above this is in milliseconds
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
STATE_PATTERN = r"^[A-Za-z0-9_.-]{1,32}$"
DEFAULT_STATES = ("ok", "warn", "fail")
UNKNOWN_STATE = "unknown"


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A parsed path: ``a.b[0]["odd.key"]``; the empty path is the document itself."""

    text: str
    segments: tuple[Segment, ...]

    def __str__(self) -> str:
        return self.text or "(document)"


def parse_path(text: str) -> JsonPath:
    """Parse ``key.key[index]["quoted key"]``; raises ValueError naming the position."""
    segments: list[Segment] = []
    i = 0
    while i < len(text):
        if text[i] == "[":
            close = text.find("]", i)
            inner = text[i + 1 : close] if close > 0 else ""
            if inner.isdigit():
                segments.append(int(inner))
            elif len(inner) >= 2 and inner[0] == inner[-1] == '"' and '"' not in inner[1:-1]:
                segments.append(inner[1:-1])
            else:
                raise ValueError(f'bad JSON path {text!r}: expected [N] or ["key"] at {i}')
            i = close + 1
            continue
        if segments or i > 0:
            if text[i] != ".":
                raise ValueError(f"bad JSON path {text!r}: expected '.' or '[' at {i}")
            i += 1
        m = _KEY_RE.match(text, i)
        if not m:
            raise ValueError(f"bad JSON path {text!r}: expected a key at {i}")
        segments.append(m.group())
        i = m.end()
    return JsonPath(text, tuple(segments))


class FieldMap(StrictModel):
    """One mapping entry; for a default field every key is optional (inherits)."""

    path: str | None = None
    type: FieldType | None = None
    unit: Unit | None = None
    required: bool | None = None
    """A required field that is missing or null fails the run (protocol)."""
    states: list[str] | None = Field(default=None, min_length=1, max_length=16)
    """For ``status`` only: the fixed set of states exported."""

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None:
            parse_path(value)  # reported with the other field errors, in one pass
        return value


@dataclass(frozen=True, slots=True)
class Standard:
    """A field of the default mapping and the family it feeds."""

    family: Family
    path: str
    type: Literal["gauge", "counter", "state", "start_time"]
    unit: Unit
    required: bool


STANDARD: dict[str, Standard] = {
    "status": Standard(M.STATUS, "status", "state", "count", True),
    "running": Standard(M.RUNNING, "running", "gauge", "bool", True),
    "queue_depth": Standard(M.QUEUE_DEPTH, "queue_size", "gauge", "count", True),
    "queue_capacity": Standard(M.QUEUE_CAPACITY, "queue_capacity", "gauge", "count", False),
    "subscribers": Standard(M.SUBSCRIBERS, "subscriber_count", "gauge", "count", True),
    "published_events": Standard(M.PUBLISHED, "published_events", "counter", "count", True),
    "dropped_events": Standard(M.DROPPED, "dropped_events", "counter", "count", True),
    "handler_errors": Standard(M.HANDLER_ERRORS, "handler_errors", "counter", "count", True),
    "dispatch_lag": Standard(M.DISPATCH_LAG, "dispatch_lag_seconds", "gauge", "seconds", False),
    "last_event": Standard(M.LAST_EVENT, "last_event_at", "gauge", "timestamp", False),
    "last_handler_error": Standard(
        M.LAST_HANDLER_ERROR, "last_error_at", "gauge", "timestamp", False
    ),
    "uptime": Standard(M.START_TIME, "uptime_seconds", "start_time", "seconds", False),
}
"""The default mapping, written for the runtime's event-bus health snapshot."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """A mapping entry with every default applied: what the probe evaluates."""

    name: str
    path: JsonPath
    kind: Literal["gauge", "counter", "state", "start_time"]
    unit: Unit
    required: bool
    family: Family
    states: tuple[str, ...] = ()


class _Problems:
    def __init__(self) -> None:
        self.items: list[InitErrorDetails] = []

    def add(self, loc: tuple[str | int, ...], message: str) -> None:
        self.items.append(
            InitErrorDetails(type=PydanticCustomError("mapping", message), loc=loc, input=None)
        )


def _resolve_standard(
    name: str, spec: Standard, entry: FieldMap | None, root: JsonPath, out: _Problems
) -> Resolved | None:
    entry = entry or FieldMap()
    if entry.type is not None and entry.type != spec.type:
        out.add((name, "type"), f"{name} is a default field: its type is fixed ({spec.type})")
    unit = entry.unit or spec.unit
    if _DIMENSION[unit] != _DIMENSION[spec.unit]:
        out.add((name, "unit"), f"{name} takes a unit of the same kind as {spec.unit}")
    if entry.states is not None and spec.type != "state":
        out.add((name, "states"), "states applies to status only")
    states = tuple(entry.states or DEFAULT_STATES)
    seen: set[str] = set()
    for i, state in enumerate(states):
        if not re.fullmatch(STATE_PATTERN, state) or state.lower() == UNKNOWN_STATE:
            out.add((name, "states", i), f"bad state name (pattern {STATE_PATTERN}, not unknown)")
        elif state.lower() in seen:
            out.add((name, "states", i), f"duplicate state {state!r}")
        seen.add(state.lower())
    path = _join(root, entry.path if entry.path is not None else spec.path, name, out)
    if path is None:
        return None
    required = spec.required if entry.required is None else entry.required
    return Resolved(name, path, spec.type, unit, required, spec.family, states)


def _resolve_custom(name: str, entry: FieldMap, root: JsonPath, out: _Problems) -> Resolved | None:
    if not re.fullmatch(FIELD_NAME_PATTERN, name):
        out.add((name,), f"field name must match {FIELD_NAME_PATTERN}")
    if entry.states is not None:
        out.add((name, "states"), "states applies to status only")
    if entry.path is None:
        out.add((name, "path"), "required for a custom field (default fields: " + _names() + ")")
        return None
    kind = entry.type or "gauge"
    unit = entry.unit or "count"
    if kind == "counter" and unit in ("timestamp", "bool"):
        out.add((name, "unit"), f"a counter cannot have unit {unit}")
    path = _join(root, entry.path, name, out)
    if path is None:
        return None
    family = M.FIELD_TOTAL if kind == "counter" else M.FIELD
    return Resolved(name, path, kind, unit, bool(entry.required), family)


def _join(root: JsonPath, text: str, name: str, out: _Problems) -> JsonPath | None:
    try:
        path = parse_path(text)
    except ValueError as exc:
        out.add((name, "path"), str(exc))
        return None
    if not root.segments:
        return path
    joined = f"{root.text}.{text}" if text and not text.startswith("[") else root.text + text
    return JsonPath(joined, root.segments + path.segments)


def _names() -> str:
    return ", ".join(STANDARD)


def resolve_mapping(
    mapping: dict[str, FieldMap | None], root: str, use_defaults: bool
) -> tuple[Resolved, ...]:
    """Apply defaults and check every entry; raises ValidationError located at the entry.

    Raised inside a pydantic validator, the error's location is appended to the
    field's, so ``--check-config`` names e.g. ``eventbus[0].mapping.lag.unit``.
    """
    out = _Problems()
    try:
        root_path = parse_path(root)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    resolved: list[Resolved] = []
    names = list(STANDARD) if use_defaults else []
    names += [n for n in mapping if n not in names]
    for name in names:
        entry = mapping.get(name)
        if name in mapping and entry is None:
            continue  # a default field switched off with `name: null`
        if name in STANDARD:
            r = _resolve_standard(name, STANDARD[name], entry, root_path, out)
        else:
            assert entry is not None
            r = _resolve_custom(name, entry, root_path, out)
        if r is not None:
            resolved.append(r)
    if out.items:
        raise ValidationError.from_exception_data("mapping", out.items)
    return tuple(resolved)


class FieldError(ValueError):
    """A mapped field holds a value of the wrong type; the message never echoes it."""


def lookup(doc: Any, path: JsonPath) -> tuple[bool, Any]:
    """(found, value): missing keys and indices are not found; null counts as not found."""
    cur = doc
    for seg in path.segments:
        if isinstance(seg, int):
            if not isinstance(cur, list):
                raise FieldError(f"expected a list before [{seg}], got {_jtype(cur)}")
            if seg >= len(cur):
                return False, None
            cur = cur[seg]
        else:
            if not isinstance(cur, dict):
                raise FieldError(f"expected an object before {seg!r}, got {_jtype(cur)}")
            if seg not in cur:
                return False, None
            cur = cur[seg]
    return cur is not None, cur


def _jtype(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "list"}
    names[dict] = "object"
    return "null" if value is None else names.get(type(value), type(value).__name__)


def convert(value: Any, unit: Unit) -> float:
    """A JSON value in ``unit`` -> a float in the base unit; FieldError if it does not fit."""
    if unit == "bool":
        if not isinstance(value, bool):
            raise FieldError(f"expected a boolean, got {_jtype(value)}")
        return 1.0 if value else 0.0
    if unit == "timestamp":
        return _timestamp(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(f"expected a number, got {_jtype(value)}")
    number = _float(value)
    if not math.isfinite(number):
        raise FieldError("expected a finite number")
    return number * _SCALE.get(unit, 1.0)


def _timestamp(value: Any) -> float:
    if isinstance(value, str):
        text = value.strip()
        text = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise FieldError("expected an ISO-8601 timestamp or Unix time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
        if seconds <= 0:  # as for a number: 1970 or before is no event time
            raise FieldError("expected a timestamp after 1970")
        return seconds
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(f"expected an ISO-8601 timestamp or Unix time, got {_jtype(value)}")
    number = _float(value)
    if not math.isfinite(number) or number <= 0:
        raise FieldError("expected a positive Unix time")
    return number / 1000.0 if number > _MS_TIMESTAMP else number


def _float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # a JSON integer beyond float range
        raise FieldError("number out of range") from None


def base_unit(unit: Unit) -> str:
    """The ``unit`` label value of a custom field: its unit after conversion."""
    return _BASE_UNIT[unit]
