"""FIX, active: a monitoring session that logs on to a venue or gateway."""

from .probe import KIND

__all__ = ["KIND"]
