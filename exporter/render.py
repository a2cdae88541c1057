"""Samples rendered into exposition text, grouped by family: done once per probe run."""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import groupby
from operator import attrgetter

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


class _Escaped(dict[str, str]):
    """Label values as rendered, computed once per distinct value."""

    def __missing__(self, value: str) -> str:
        escaped = self[value] = _escape_fast(value)
        return escaped


def _family_text(samples: list[Sample | HistogramSample], escaped: _Escaped) -> str:
    """The lines of one family's samples, each label set once with its last value."""
    lines: dict[tuple[str, ...], str] = {}
    template = _template(samples[0].family)
    for s in samples:
        values = tuple(map(escaped.__getitem__, s.labels))
        if values == s.labels:
            values = s.labels  # the same strings: keep the tuple the probe shares
        if isinstance(s, HistogramSample):
            lines[values] = _render_histogram(s, values)
        else:
            lines[values] = template % (*values, format_value(s.value))
    return "".join(lines.values())


def render(samples: Iterable[Sample | HistogramSample]) -> dict[str, str]:
    """Render samples into exposition lines grouped by family name.

    A repeated label set (as rendered) keeps its last value, so a probe cannot
    produce a duplicate series. One family is rendered at a time: its lines are
    joined and let go before the next family's are made.
    """
    by_family: dict[str, list[Sample | HistogramSample]] = {}
    for family, run in groupby(samples, attrgetter("family")):
        by_family.setdefault(family.name, []).extend(run)
    escaped = _Escaped()
    return {name: _family_text(group, escaped) for name, group in by_family.items()}
