"""Drills: the records that drills leave behind, read like restore-drill records."""

from .probe import KIND

__all__ = ["KIND"]
