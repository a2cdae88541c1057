"""The metric catalogue: every family the exporter can emit, defined once.

Each area has a module; ``ALL`` lists them in exposition order. The rules and
dashboards are checked against this catalogue (``--list-metrics``).
"""

from __future__ import annotations

from . import backups, calendar, core, drills, eventbus, fix, kafka, redis, timescale
from .base import NAMESPACE, Family, MetricType, family

AREAS: dict[str, tuple[Family, ...]] = {
    "exporter": core.FAMILIES,
    "calendar": calendar.FAMILIES,
    "fix": fix.FAMILIES,
    "kafka": kafka.FAMILIES,
    "redis": redis.FAMILIES,
    "timescale": timescale.FAMILIES,
    "backups": backups.FAMILIES,
    "eventbus": eventbus.FAMILIES,
    "drills": drills.FAMILIES,
}

ALL: tuple[Family, ...] = tuple(f for fams in AREAS.values() for f in fams)
BY_NAME: dict[str, Family] = {f.name: f for f in ALL}

if len(BY_NAME) != len(ALL):  # pragma: no cover - guards against a copy-paste slip
    raise RuntimeError("duplicate metric family name in the catalogue")

__all__ = ["ALL", "AREAS", "BY_NAME", "NAMESPACE", "Family", "MetricType", "family"]
