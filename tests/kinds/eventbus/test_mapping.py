"""JSON paths and value conversion of the event-bus health mapping."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.kinds.eventbus.mapping import FieldError, convert, lookup, parse_path


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", ()),
        ("queue_size", ("queue_size",)),
        ("event_bus.queue-size", ("event_bus", "queue-size")),
        ("checks[2].metadata", ("checks", 2, "metadata")),
        ('topic_subscribers["telemetry.*"]', ("topic_subscribers", "telemetry.*")),
        ("[0][1]", (0, 1)),
    ],
)
def test_parse_path(text: str, segments: tuple[Any, ...]) -> None:
    assert parse_path(text).segments == segments


@pytest.mark.parametrize("text", [".a", "a.", "a..b", "a[", "a[-1]", "a[b]", "a b", '["x"y"]'])
def test_bad_paths(text: str) -> None:
    with pytest.raises(ValueError, match="bad JSON path"):
        parse_path(text)


def test_lookup_missing_null_and_shape() -> None:
    doc = {"a": {"b": [1, None]}, "n": None}
    assert lookup(doc, parse_path("a.b[0]")) == (True, 1)
    assert lookup(doc, parse_path("a.b[1]")) == (False, None)
    assert lookup(doc, parse_path("a.b[5]")) == (False, None)
    assert lookup(doc, parse_path("a.c")) == (False, None)
    assert lookup(doc, parse_path("n")) == (False, None)
    with pytest.raises(FieldError, match="expected an object before 'x', got list"):
        lookup(doc, parse_path("a.b.x"))
    with pytest.raises(FieldError, match=r"expected a list before \[0\], got object"):
        lookup(doc, parse_path("a[0]"))


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (5, "count", 5.0),
        (250, "milliseconds", 0.25),
        (1500, "microseconds", 0.0015),
        (2, "seconds", 2.0),
        (True, "bool", 1.0),
        (False, "bool", 0.0),
        ("2026-11-23T03:00:00+00:00", "timestamp", 1795402800.0),
        ("2026-11-23T03:00:00Z", "timestamp", 1795402800.0),
        ("2026-11-23T03:00:00", "timestamp", 1795402800.0),
        (1795402800, "timestamp", 1795402800.0),
        (1795402800250, "timestamp", 1795402800.25),
    ],
)
def test_convert(value: Any, unit: Any, expected: float) -> None:
    assert convert(value, unit) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        ("5", "count"),
        (True, "count"),
        (float("nan"), "count"),
        (float("inf"), "seconds"),
        (1, "bool"),
        ("soon", "timestamp"),
        (-5, "timestamp"),
        ([1], "count"),
        (10**400, "count"),
        (10**400, "timestamp"),
    ],
)
def test_convert_rejects(value: Any, unit: Any) -> None:
    with pytest.raises(FieldError):
        convert(value, unit)
