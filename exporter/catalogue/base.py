"""Metric family definitions: the one place where names, types, help and labels live."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

NAMESPACE = "tradeops"

MetricType = Literal["gauge", "counter", "histogram"]

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class Family:
    """One metric family: full name, type, help text and label names (in order)."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name) or not self.name.startswith(NAMESPACE + "_"):
            raise ValueError(f"bad metric name {self.name!r}")
        for label in self.labels:
            if not _LABEL_RE.match(label) or label.startswith("__") or label == "le":
                raise ValueError(f"bad label name {label!r} on {self.name}")
        if self.type == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name} must end in _total")
        if self.type != "counter" and self.name.endswith("_total"):
            raise ValueError(f"{self.name} ends in _total but is a {self.type}")
        if self.type == "histogram" and not self.buckets:
            raise ValueError(f"histogram {self.name} needs buckets")
        if not self.help or "\n" in self.help:
            raise ValueError(f"{self.name} needs a one-line help text")

    @property
    def header(self) -> str:
        """The ``# HELP`` and ``# TYPE`` lines of this family."""
        help_text = self.help.replace("\\", "\\\\")
        return f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.type}\n"


def family(
    name: str, type_: MetricType, help_: str, *labels: str, buckets: tuple[float, ...] = ()
) -> Family:
    """Build a family whose name is given without the namespace prefix."""
    return Family(f"{NAMESPACE}_{name}", type_, help_, tuple(labels), buckets)
