"""Versions reported by ``tradeops_exporter_build_info``."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

try:
    VERSION = metadata.version("tradeops-exporter")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    VERSION = "0.0.0+unknown"

_BUNDLE_FILE = Path(__file__).resolve().parent.parent / "rules" / "VERSION"


def bundle_version() -> str:
    """The monitoring bundle's version (rules/VERSION), or ``unknown`` when not shipped."""
    try:
        return _BUNDLE_FILE.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"
