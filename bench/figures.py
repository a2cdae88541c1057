"""The figures one benchmark hands to ``bench/run.py``.

Every ``bench/bench_*.py`` prints its own figures for a person and, given
``--json PATH``, also writes them there as a :class:`Report`: a title (what was
measured, on what, against which peer) and rows of :class:`Figure`. ``run.py``
reads the reports and prints them as one table. Quantiles are computed here, the
same way for every bench.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def median(values: Sequence[float]) -> float:
    """The median."""
    return float(statistics.median(values))


def quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1): the smallest value that at
    least ``q`` of the values do not exceed. With fewer than 100 values, p99 is
    the maximum."""
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


def p99(values: Sequence[float]) -> float:
    """The nearest-rank 99th percentile."""
    return quantile(values, 0.99)


@dataclass(frozen=True, slots=True)
class Figure:
    """One row: our value, and the peer's for the same thing when there is a peer."""

    name: str
    unit: str
    ours: float
    peer: float | None = None
    ratio: bool = True
    """Whether ours/peer is meaningful (a cost); False for counts such as series."""


@dataclass(slots=True)
class Report:
    """One benchmark's figures."""

    bench: str
    title: str
    peer: str = ""
    """The peer's name and version, when the bench compares with one."""
    figures: list[Figure] = field(default_factory=list)

    def add(
        self, name: str, unit: str, ours: float, peer: float | None = None, ratio: bool = True
    ) -> None:
        """Append a row."""
        theirs = None if peer is None else float(peer)
        self.figures.append(Figure(name, unit, float(ours), theirs, ratio))

    def add_latencies(
        self, name: str, ours: Sequence[float], peer: Sequence[float] | None = None
    ) -> None:
        """Two rows, median and p99, of latencies given in seconds (shown in ms)."""
        for label, stat in (("median", median), ("p99", p99)):
            theirs = 1000 * stat(peer) if peer else None
            self.add(f"{name} {label}", "ms", 1000 * stat(ours), theirs)

    def write(self, path: str | None) -> None:
        """Write the report as JSON to ``path`` (nothing when None)."""
        if path:
            Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def read(cls, path: Path) -> Report:
        """A report written by :meth:`write`."""
        data: dict[str, Any] = json.loads(path.read_text())
        figures = [Figure(**f) for f in data.pop("figures")]
        return cls(**data, figures=figures)


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--json PATH`` option every bench takes."""
    parser.add_argument("--json", metavar="PATH", help="also write the figures here as JSON")


def peer_version(program: str, flag: str = "--version") -> str:
    """The first version-looking word a program prints for ``flag`` ('' when absent)."""
    binary = shutil.which(program)
    if not binary:
        return ""
    out = subprocess.run([binary, flag], capture_output=True, text=True, timeout=10, check=False)
    for word in (out.stdout + out.stderr).replace(",", " ").split():
        if word[:1].isdigit() and word.count(".") >= 2:
            return word.split("-")[0]
    return ""
