"""Backups target configuration: one backup set and its source (a directory of
backups, ``pgbackrest info`` or restore-drill records), checksum and objectives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from ...model import Duration, StrictModel, TargetBase

MiB = 1 << 20
RESPONSE_BUDGET = 32 * MiB
"""The kind's default ``response_budget``: twice the default ``max_output_bytes``."""
_STANZA_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"


class DirectorySource(StrictModel):
    """A directory of backups: one JSON manifest per backup, or bare files."""

    type: Literal["directory"]
    path: Path
    manifests: str | None = None
    """Glob (relative to ``path``) of manifest files; default ``*.manifest.json``."""
    files: str | None = None
    """Glob of bare backup files (no manifests): finish = mtime, size = file size."""
    recovery_point: Literal["finish", "start"] = "finish"
    """Which end of the newest backup the RPO counts from; ``start`` for snapshot
    dumps such as pg_dump, whose data is as of their start."""
    bare_type: Literal["full", "diff", "incr"] = "full"
    min_size_bytes: int = Field(default=1, ge=0)
    """Bare files smaller than this count as failed backups."""
    max_entries: int = Field(default=10000, ge=1)
    max_manifest_bytes: int = Field(default=MiB, ge=64)

    @model_validator(mode="after")
    def _one_mode(self) -> DirectorySource:
        if self.manifests is not None and self.files is not None:
            raise ValueError("give manifests or files, not both")
        return self

    @property
    def glob(self) -> str:
        """The effective glob."""
        return self.files or self.manifests or "*.manifest.json"


class PgBackRestSource(StrictModel):
    """``pgbackrest info --output=json`` for one stanza, run or read from a file."""

    type: Literal["pgbackrest"]
    stanza: str = Field(pattern=_STANZA_PATTERN)
    command: list[str] | None = Field(default=None, min_length=1)
    """Program and leading arguments; ``--stanza=S --output=json info`` is appended."""
    output_file: Path | None = None
    """Read this saved output instead of running a command."""
    command_timeout: Duration | None = None
    """Defaults to the run's remaining deadline."""
    repo_path: Path | None = None
    """A local (posix) repository: gives the time the newest WAL segment was archived."""
    wal_segment_size: int = 16 * MiB
    max_output_bytes: int = Field(default=16 * MiB, ge=1024)

    @model_validator(mode="after")
    def _one_input(self) -> PgBackRestSource:
        if self.command is not None and self.output_file is not None:
            raise ValueError("give command or output_file, not both")
        return self

    @field_validator("wal_segment_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value < MiB or value > 1024 * MiB or value & (value - 1):
            raise ValueError("must be a power of two between 1 MiB and 1 GiB")
        return value

    @property
    def argv(self) -> list[str]:
        """The full command line."""
        return [
            *(self.command or ["pgbackrest"]),
            f"--stanza={self.stanza}",
            "--output=json",
            "info",
        ]


class RestoreDrillSource(StrictModel):
    """Restore-drill records: one JSON file, or a directory of them."""

    type: Literal["restore_drill"]
    path: Path
    glob: str = "*.json"
    """Record files inside ``path`` when it is a directory."""
    max_records: int = Field(default=1000, ge=1)
    max_record_bytes: int = Field(default=MiB, ge=64)


class ChecksumConfig(StrictModel):
    """Verification of the newest backup's checksum (directory manifests)."""

    enabled: bool = True
    bytes_per_run: int = Field(default=64 * MiB, ge=4096)
    """At most this many bytes are hashed per run; larger files resume next run."""
    reverify_after: Duration = 86400.0
    """Hash an unchanged file again after this long (catches bit rot)."""


SOURCE_TYPES = ("directory", "pgbackrest", "restore_drill")


def _source_tag(value: Any) -> str | None:
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return tag if tag in SOURCE_TYPES else None


Source = Annotated[
    Annotated[DirectorySource, Tag("directory")]
    | Annotated[PgBackRestSource, Tag("pgbackrest")]
    | Annotated[RestoreDrillSource, Tag("restore_drill")],
    Discriminator(
        _source_tag,
        custom_error_type="source_type",
        custom_error_message="expected a mapping with type: directory, pgbackrest or restore_drill",
    ),
]


class BackupTarget(TargetBase):
    """One backup set."""

    source: Source
    retention: Duration = 7 * 86400.0
    """Window over which successful backups are counted."""
    checksum: ChecksumConfig = Field(default_factory=ChecksumConfig)
    rpo_objective: Duration = 26 * 3600.0
    """The largest acceptable data loss: how old the recovery point may get."""
    restore_drill_max_interval: Duration = 8 * 86400.0
    """The longest acceptable time between two successful restore drills."""
    min_backups: int = Field(default=1, ge=0)
    """Successful backups (all types together) expected inside the retention window."""
