"""Metric family definitions shared by every kind: the exporter's own and the calendar's.

Each kind declares its families in ``exporter/kinds/<kind>/metrics.py``; the
whole catalogue (``ALL``, ``BY_NAME``) is assembled in ``exporter.kinds``.
"""

from __future__ import annotations

from . import calendar, core
from .base import NAMESPACE, Family, MetricType, family

__all__ = ["NAMESPACE", "Family", "MetricType", "calendar", "core", "family"]
