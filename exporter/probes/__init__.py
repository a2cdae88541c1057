"""Probe kinds, one module each. ``KINDS`` maps a config section to its kind."""

from __future__ import annotations

from typing import Any

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
