"""Probe kinds, one package each, and the catalogue assembled from them.

``KINDS`` maps a config section to its kind; ``ALL`` lists every metric family
the exporter can emit, in exposition order: the exporter's own, the calendar's,
then each kind's (``ProbeKind.families``). Rules and dashboards are checked
against this list (``--list-metrics``).
"""

from __future__ import annotations

from typing import Any

from ..catalogue import Family, calendar, core
from ..probe import ProbeKind
from . import backups, drills, eventbus, fix, fix_store, kafka, redis, timescale

KINDS: dict[str, ProbeKind[Any, Any]] = {
    kind.name: kind
    for kind in (
        fix.KIND,
        fix_store.KIND,
        kafka.KIND,
        redis.KIND,
        timescale.KIND,
        backups.KIND,
        eventbus.KIND,
        drills.KIND,
    )
}

AREAS: dict[str, tuple[Family, ...]] = {
    "exporter": core.FAMILIES,
    "calendar": calendar.FAMILIES,
    **{name: kind.families for name, kind in KINDS.items()},
}
"""Families by owner: the exporter, the calendar and each kind (by section name)."""

ALL: tuple[Family, ...] = tuple(f for fams in AREAS.values() for f in fams)
BY_NAME: dict[str, Family] = {f.name: f for f in ALL}

if len(BY_NAME) != len(ALL):  # pragma: no cover - guards against a copy-paste slip
    raise RuntimeError("duplicate metric family name in the catalogue")
