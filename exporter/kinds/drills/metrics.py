"""Drill families: records of drills run against the platform (the paging drill of
``python -m bundle.drill``). ``target`` is the configured drills target; what a
record holds (receivers, drill ids) never becomes a label value."""

from __future__ import annotations

from ...catalogue.base import family

T = "target"

RECORDS = family(
    "drill_records",
    "gauge",
    "Drill records found (the newest max_records files); 0 means no drill has reported.",
    T,
)
LAST = family(
    "drill_last_timestamp_seconds",
    "gauge",
    "Unix time the newest drill finished, successful or not.",
    T,
)
LAST_SUCCESS_TIMESTAMP = family(
    "drill_last_success_timestamp_seconds",
    "gauge",
    "Unix time the newest successful drill finished; absent until one has succeeded.",
    T,
)
LAST_OK = family(
    "drill_last_success",
    "gauge",
    "1 if the newest drill succeeded, else 0.",
    T,
)
MAX_INTERVAL = family(
    "drill_max_interval_seconds",
    "gauge",
    "The configured max_interval: the longest acceptable time between two successful drills.",
    T,
)

FAMILIES = (RECORDS, LAST, LAST_SUCCESS_TIMESTAMP, LAST_OK, MAX_INTERVAL)
