"""Properties of the event-bus health mapping (``exporter.kinds.eventbus.mapping``)
as the probe applies it to a health document (``health.parse_document`` and
``map_fields``, the steps after the HTTP fetch).

Any body gives samples or ProbeError("protocol"), never another exception; every
label value comes from the config (target and field names, states, base units) and
stays within its pattern; a generated valid document maps to the expected series.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from exporter.kinds.eventbus import metrics as M
from exporter.kinds.eventbus.config import EventBusTarget
from exporter.kinds.eventbus.health import map_body
from exporter.kinds.eventbus.mapping import (
    _BASE_UNIT,
    FIELD_NAME_PATTERN,
    STANDARD,
    STATE_PATTERN,
    UNKNOWN_STATE,
    FieldError,
    convert,
)
from exporter.kinds.eventbus.probe import EventBusState
from exporter.model import NAME_PATTERN
from exporter.probe import ProbeError, ProbeResult, Sample

from ...properties import examples

NOW = 1795401397.0
CUSTOM = {
    "lag_ms": {"path": 'stats["lag.ms"]', "unit": "milliseconds"},
    "healthy": {"path": "checks[0].ok", "unit": "bool"},
    "retries": {"path": "checks[1]", "type": "counter"},
    "seen_at": {"path": "seen", "unit": "timestamp", "required": True},
    "bytes_in": {"path": "io.in", "unit": "bytes", "type": "counter"},
}
TARGETS = [
    EventBusTarget.model_validate({"name": "bus", "url": "http://127.0.0.1:1/health", **extra})
    for extra in (
        {},
        {"root": "event_bus"},
        {"mapping": {"status": {"states": ["OK", "degraded", "Fail"]}, "uptime": None}},
        {"default_mapping": False, "mapping": CUSTOM},
        {"root": "data[0]", "mapping": CUSTOM},
    )
]  # fmt: skip
PATH_KEYS = sorted(
    {seg for t in TARGETS for f in t.fields for seg in f.path.segments if isinstance(seg, str)}
)
UNITS = set(_BASE_UNIT.values())

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["ok", "OK", "warn", "fail", " Fail ", "degraded", "unknown", "", "\x00",
                     "2026-11-23T03:00:00Z", "2026-11-23", "0001-01-01T00:00:00+14:00",
                     "not a time", "1795401397"]),
)  # fmt: skip
json_keys = st.sampled_from(PATH_KEYS) | st.text(max_size=6)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(json_keys, inner, max_size=4),
    max_leaves=8,
)


def _map(target: EventBusTarget, body: bytes) -> ProbeResult:
    """What the probe does with a fetched body (``health.map_body``)."""
    r = ProbeResult()
    map_body(r, target, EventBusState(target), body, NOW)
    return r


def _check_labels(target: EventBusTarget, r: ProbeResult) -> None:
    states = {s for f in target.fields for s in f.states} | {UNKNOWN_STATE}
    for s in r.samples:
        assert isinstance(s, Sample)
        assert math.isfinite(s.value), s
        values = dict(zip(s.family.labels, s.labels, strict=True))
        assert values.pop("target") == target.name
        assert re.fullmatch(NAME_PATTERN, target.name)
        if "field" in values:
            field = values.pop("field")
            assert field in STANDARD or re.fullmatch(FIELD_NAME_PATTERN, field), s
        if "unit" in values:
            assert values.pop("unit") in UNITS, s
        if "status" in values:
            state = values.pop("status")
            assert state in states and re.fullmatch(STATE_PATTERN, state), s
        assert not values, s


def _outcome(target: EventBusTarget, body: bytes) -> ProbeResult | None:
    try:
        r = _map(target, body)
    except ProbeError as exc:
        assert exc.reason == "protocol", exc
        assert len(str(exc)) < 1024
        return None
    _check_labels(target, r)
    return r


@examples(300)
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode), st.sampled_from(TARGETS))
@example(b"[" * 100_000, TARGETS[0])  # nested too deeply for the parser's recursion
@example(b'{"queue_size": ' + b"9" * 5000 + b"}", TARGETS[0])  # over int()'s digit limit
def test_any_body_gives_samples_or_a_protocol_error(body: bytes, target: EventBusTarget) -> None:
    _outcome(target, body)


@examples(300)
@given(json_values, st.sampled_from(sorted(set(_BASE_UNIT))))
@example("0001-01-01T00:00:00+14:00", "timestamp")  # before 1970: numbers must be > 0
def test_convert_gives_a_finite_float_or_a_field_error(value: Any, unit: Any) -> None:
    try:
        number = convert(value, unit)
    except FieldError as exc:
        assert len(str(exc)) < 80  # names the type, never echoes the value
    else:
        assert isinstance(number, float) and math.isfinite(number)
        assert unit != "timestamp" or number > 0, number


counts = st.integers(0, 2**53)
unix_times = st.floats(1e9, 4e9)  # 2001-2096: in milliseconds, above the 1e11 cut


@st.composite
def health_documents(draw: st.DrawFn) -> tuple[dict[str, Any], dict[tuple[str, ...], float]]:
    """A valid document for the default mapping and the series it must give:
    (family name, *label values after the target) -> value."""
    status = draw(st.sampled_from(["ok", "warn", "fail", "OK", " Warn", "starting"]))
    doc: dict[str, Any] = {
        "status": status,
        "running": draw(st.booleans()),
        "queue_size": draw(counts),
        "subscriber_count": draw(counts),
        "published_events": draw(counts),
        "dropped_events": draw(counts),
        "handler_errors": draw(counts),
    }
    optional = {
        "queue_capacity": counts,
        "dispatch_lag_seconds": st.floats(0, 1e6),
        "last_event_at": unix_times,
        "last_error_at": unix_times.map(lambda t: t * 1000),  # milliseconds
        "uptime_seconds": st.integers(0, 10**8),
    }
    for key, values in optional.items():
        if draw(st.booleans()):
            doc[key] = draw(values)
    current = status.strip().lower()
    want: dict[tuple[str, ...], float] = {
        (M.RUNNING.name,): float(doc["running"]),
        (M.QUEUE_DEPTH.name,): doc["queue_size"],
        (M.SUBSCRIBERS.name,): doc["subscriber_count"],
        (M.PUBLISHED.name,): doc["published_events"],
        (M.DROPPED.name,): doc["dropped_events"],
        (M.HANDLER_ERRORS.name,): doc["handler_errors"],
        **{(M.STATUS.name, s): float(s == current) for s in ("ok", "warn", "fail")},
        (M.STATUS.name, UNKNOWN_STATE): float(current not in ("ok", "warn", "fail")),
    }
    families = {"queue_capacity": M.QUEUE_CAPACITY, "dispatch_lag_seconds": M.DISPATCH_LAG,
                "last_event_at": M.LAST_EVENT, "last_error_at": M.LAST_HANDLER_ERROR,
                "uptime_seconds": M.START_TIME}  # fmt: skip
    for key, fam in families.items():
        if key in doc:
            v = doc[key]
            want[(fam.name,)] = {
                "last_error_at": v / 1000,
                "uptime_seconds": round(NOW - v),
            }.get(key, v)
    for name, spec in STANDARD.items():
        want[(M.FIELD_PRESENT.name, name)] = float(spec.path in doc)
    return doc, want


@examples(300)
@given(health_documents(), st.booleans())
def test_a_valid_health_document_maps_to_the_expected_series(
    generated: tuple[dict[str, Any], dict[tuple[str, ...], float]], rooted: bool
) -> None:
    doc, want = generated
    target = TARGETS[1] if rooted else TARGETS[0]
    body = json.dumps({"event_bus": doc, "version": "1"} if rooted else doc).encode()
    r = _outcome(target, body)
    assert r is not None
    got = {(s.family.name, *s.labels[1:]): s.value for s in r.samples if isinstance(s, Sample)}
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=1e-12), key


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """Junk made of the mapped paths' keys, or a valid document with some of its
    values replaced by any JSON (NaN, Infinity and 400-digit numbers included,
    which Python's parser reads)."""
    if draw(st.booleans()):
        return draw(st.dictionaries(json_keys, json_values, max_size=8))
    doc, _ = draw(health_documents())
    for key in draw(st.lists(st.sampled_from(sorted(doc)), max_size=3)):
        doc[key] = draw(json_values)
    return doc


@examples(300)
@given(documents(), st.sampled_from(TARGETS), st.booleans())
def test_any_json_document_gives_samples_or_a_protocol_error(
    doc: dict[str, Any], target: EventBusTarget, nest: bool
) -> None:
    if nest:
        doc = {"event_bus": doc, "data": [doc], "stats": doc, **doc}
    _outcome(target, json.dumps(doc).encode())


mapping_entries = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "path": st.sampled_from(["a", "a.b[0]", '["x.y"]', "[1]", "", "a..b", "a[-1]"])
        | st.text(max_size=8),
        "type": st.sampled_from(["gauge", "counter", "state", "x"]),
        "unit": st.sampled_from(sorted(_BASE_UNIT)) | st.text(max_size=4),
        "required": st.booleans(),
        "states": st.lists(st.sampled_from(["ok", "OK", "unknown", "a b", "x" * 33]) | st.text(),
                           max_size=3),
    },
)  # fmt: skip
mapping_names = st.sampled_from([*STANDARD, "custom", "Bad", "x" * 65]) | st.text(max_size=8)


@examples(300)
@given(
    st.dictionaries(mapping_names, mapping_entries, max_size=4),
    st.booleans(),
    st.sampled_from(["", "event_bus", "data[0]"]),
)
def test_an_accepted_mapping_only_yields_label_values_within_their_patterns(
    mapping: dict[str, Any], defaults: bool, root: str
) -> None:
    """The field names and states a mapping accepts become label values."""
    spec = {"name": "bus", "url": "http://127.0.0.1:1/", "root": root}
    try:
        target = EventBusTarget.model_validate(
            {**spec, "mapping": mapping, "default_mapping": defaults}
        )
    except ValueError:  # pydantic's ValidationError: reported by --check-config
        return
    for f in target.fields:
        assert f.name in STANDARD or re.fullmatch(FIELD_NAME_PATTERN, f.name), f.name
        assert all(re.fullmatch(STATE_PATTERN, s) for s in f.states), f.states
        assert UNKNOWN_STATE not in {s.lower() for s in f.states}
        assert len({s.lower() for s in f.states}) == len(f.states)
