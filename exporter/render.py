"""Samples rendered into exposition text, grouped by family: done once per probe run."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .catalogue import Family
from .probe import HistogramSample, Sample


def format_value(value: float) -> str:
    """Exposition-format text of a sample value."""
    value = float(value)
    if value.is_integer():  # false for NaN and the infinities
        return str(int(value)) if -1e15 < value < 1e15 else repr(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Iterable[str], escaped: Iterable[str]) -> str:
    inner = ",".join(f'{n}="{v}"' for n, v in zip(names, escaped, strict=True))
    return "{" + inner + "}" if inner else ""


def _render_histogram(s: HistogramSample, escaped: tuple[str, ...]) -> str:
    f = s.family
    lines = []
    for bound, count in zip(f.buckets, s.cumulative_counts, strict=True):
        lbl = _labels((*f.labels, "le"), (*escaped, format_value(bound)))
        lines.append(f"{f.name}_bucket{lbl} {count}\n")
    lbl_inf = _labels((*f.labels, "le"), (*escaped, "+Inf"))
    lines.append(f"{f.name}_bucket{lbl_inf} {s.count}\n")
    plain = _labels(f.labels, escaped)
    lines.append(f"{f.name}_sum{plain} {format_value(s.sum)}\n")
    lines.append(f"{f.name}_count{plain} {s.count}\n")
    return "".join(lines)


_TEMPLATES: dict[str, str] = {}


def _template(f: Family) -> str:
    """``name{a="%s",b="%s"} %s\n`` for the family's labels (cached)."""
    tpl = _TEMPLATES.get(f.name)
    if tpl is None:
        tpl = _TEMPLATES[f.name] = (
            f.name
            + ("{" + ",".join(f'{n}="%s"' for n in f.labels) + "}" if f.labels else "")
            + " %s\n"
        )
    return tpl


def _escape_fast(value: str) -> str:
    if not value.isascii():
        value = _utf8(value)
    if "\\" in value or '"' in value or "\n" in value:
        return _escape(value)
    return value


def _utf8(value: str) -> str:
    """``value`` with each lone surrogate (from bytes decoded with ``surrogateescape``)
    replaced by U+FFFD: UTF-8 cannot encode them, and one would fail every scrape."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value


def render(samples: Iterable[Sample | HistogramSample]) -> dict[str, str]:
    """Render samples into exposition lines grouped by family name.

    A repeated label set (as rendered) keeps its last value, so a probe cannot
    produce a duplicate series.
    """
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    for s in samples:
        values = tuple(map(_escape_fast, s.labels))
        if isinstance(s, HistogramSample):
            seen[(s.family.name, values)] = _render_histogram(s, values)
        else:
            seen[(s.family.name, values)] = _template(s.family) % (
                *values,
                format_value(s.value),
            )
    grouped: dict[str, list[str]] = {}
    for (name, _), line in seen.items():
        grouped.setdefault(name, []).append(line)
    return {name: "".join(lines) for name, lines in grouped.items()}
