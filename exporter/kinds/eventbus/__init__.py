"""Event bus: the runtime's health endpoint and an end-to-end canary."""

from .probe import KIND

__all__ = ["KIND"]
