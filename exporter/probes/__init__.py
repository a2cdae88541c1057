"""Probe kinds, one module each. ``KINDS`` maps a config section to its kind."""

from __future__ import annotations

from typing import Any

from ..probe import ProbeKind
from . import backups, redis

KINDS: dict[str, ProbeKind[Any, Any]] = {kind.name: kind for kind in (redis.KIND, backups.KIND)}
