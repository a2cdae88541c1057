"""Backups: last success, size, duration and retention count, from records or files."""

from .probe import KIND

__all__ = ["KIND"]
