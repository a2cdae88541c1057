"""The TimescaleDB/PostgreSQL target: where the database is, how to log in, what to watch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from ...model import (
    NAME_PATTERN,
    Duration,
    HostTLSConfig,
    Name,
    PasswordMixin,
    StrictModel,
    TargetBase,
    parse_host_port,
)

DEFAULT_PORT = 5432

SSLMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


def _identifier(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


class WatchedTable(StrictModel):
    """A table whose newest row tells whether data is still landing."""

    name: str = Field(pattern=NAME_PATTERN)
    """The ``table`` label value."""
    schema_: str = Field(default="public", alias="schema", min_length=1)
    table: str = Field(min_length=1)
    time_column: str = Field(default="time", min_length=1)
    time_unit: Literal["s", "ms", "us", "ns"] = "s"
    """Unit of an integer or numeric time column (ignored for timestamp columns)."""
    freshness_sla: Duration = 300.0
    """How old the newest row may be while data should be landing."""
    calendar: Name | None = None
    """The calendar ingest into this table follows; defaults to the target's."""

    _no_nul = field_validator("schema_", "table", "time_column")(_identifier)


class TimescaleTarget(TargetBase, PasswordMixin):
    """One PostgreSQL database (with or without the timescaledb extension)."""

    address: str
    """``host:port`` (port defaults to 5432)."""
    database: str = Field(min_length=1)
    user: str = Field(min_length=1)
    sslmode: SSLMode = "prefer"
    tls: HostTLSConfig | None = None
    statement_timeout: Duration | None = None
    """Server- and client-side limit on each statement; defaults to half the timeout.
    Set per run (``SET LOCAL`` in the run's transaction), so it holds through
    PgBouncer in every pool mode but statement."""
    tables: list[WatchedTable] = Field(default_factory=list)
    max_hypertables: int = Field(default=500, ge=0)
    max_jobs: int = Field(default=500, ge=0)
    statement_cache: bool = True
    """Named prepared statements, kept per connection. Off: unnamed ones, parsed and
    planned on every run (PgBouncer in transaction mode before 1.21; PGlite)."""
    keep_connection: bool = True
    """Keep the connection between runs. Off: one connection per run, closed at its
    end (a server that serves one client at a time, such as PGlite)."""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_host_port(value, DEFAULT_PORT)
        return value

    @field_validator("tls")
    @classmethod
    def _tls(cls, value: HostTLSConfig | None, info: ValidationInfo) -> HostTLSConfig | None:
        if value is None:
            return value
        if info.data.get("sslmode", "prefer") in ("disable", "allow", "prefer"):
            raise ValueError("needs sslmode require, verify-ca or verify-full")
        return value

    @field_validator("statement_timeout")
    @classmethod
    def _statement_timeout(cls, value: float | None, info: ValidationInfo) -> float | None:
        timeout = info.data.get("timeout")
        if value is not None and timeout is not None and value > timeout:
            raise ValueError(f"must not exceed the timeout ({timeout:g}s)")
        return value

    @field_validator("tables")
    @classmethod
    def _unique_tables(cls, value: list[WatchedTable]) -> list[WatchedTable]:
        seen: set[str] = set()
        for table in value:
            if table.name in seen:
                raise ValueError(f"duplicate table name {table.name!r}")
            seen.add(table.name)
        return value

    @property
    def statement_timeout_s(self) -> float:
        """The effective per-statement limit: half the timeout unless set."""
        return min(self.statement_timeout or self.timeout_s / 2, self.timeout_s)

    @property
    def lock_timeout_s(self) -> float:
        """How long a statement waits for a lock (a table under DDL): short, so
        that a locked watched table fails alone and fast."""
        return min(self.statement_timeout_s / 4, 1.0)
