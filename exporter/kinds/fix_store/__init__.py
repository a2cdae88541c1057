"""FIX, passive: a QuickFIX engine's FileStore and FileLog, read for one session."""

from .probe import KIND

__all__ = ["KIND"]
