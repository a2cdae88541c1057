"""Kafka target configuration: the cluster, its connection settings and what to watch."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...model import (
    Duration,
    HostTLSConfig,
    Name,
    PasswordMixin,
    Regex,
    StrictModel,
    TargetBase,
    parse_host_port,
)


class NameFilter(StrictModel):
    """Regexes matched against whole names: kept if any ``allow`` matches (or
    ``allow`` is empty) and no ``deny`` matches."""

    allow: list[Regex] = Field(default_factory=list)
    deny: list[Regex] = Field(default_factory=list)

    def keeps(self, name: str) -> bool:
        """True when ``name`` passes the filter."""
        if self.allow and not any(re.fullmatch(p, name) for p in self.allow):
            return False
        return not any(re.fullmatch(p, name) for p in self.deny)


class SASLConfig(PasswordMixin):
    """SASL authentication; the password comes from ``${ENV}`` or ``password_file``."""

    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    username: str = Field(min_length=1)

    @model_validator(mode="after")
    def _needs_password(self) -> SASLConfig:
        if self.password is None and self.password_file is None:
            raise ValueError("SASL needs password (${ENV_VAR}) or password_file")
        return self


class LagObjective(StrictModel):
    """The time-lag objective of the consumer groups whose names fully match ``groups``."""

    groups: Regex
    objective: Duration
    calendar: Name | None = None
    """The calendar the groups' consumers follow; defaults to the target's."""


class KafkaConnection(StrictModel):
    """How to reach and log in to a Kafka cluster: the one schema of the Kafka
    kind's targets and the event-bus canary's Kafka transport."""

    bootstrap_servers: str
    """Comma-separated ``host:port`` list."""
    client_id: str = "tradeops-exporter"
    tls: HostTLSConfig | None = None
    sasl: SASLConfig | None = None

    @field_validator("bootstrap_servers")
    @classmethod
    def _servers(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("expected host:port[,host:port...]")
        for server in servers:
            parse_host_port(server)
        return ",".join(servers)

    def servers(self) -> list[str]:
        """The bootstrap servers, one ``host:port`` each."""
        return self.bootstrap_servers.split(",")


# KafkaConnection first: pydantic orders the fields from the last base up, so
# TargetBase's come first, as they did (the order errors are reported in).
class KafkaTarget(KafkaConnection, TargetBase):
    """One Kafka cluster."""

    groups: NameFilter = Field(default_factory=NameFilter)
    topics: NameFilter = Field(default_factory=NameFilter)
    include_internal_topics: bool = False
    granularity: Literal["partition", "topic"] = "partition"
    status_window: int = Field(default=10, ge=2, le=1000)
    """Polls the status and drain estimate look back over."""
    lag_table_size: int = Field(default=64, ge=4, le=4096)
    """Points kept per partition for the time-lag interpolation."""
    max_concurrent_requests: int = Field(default=20, ge=1, le=500)
    rediscover_interval: Duration = 600.0
    """How often each group's committed topics are re-checked against every topic."""
    lag_objectives: list[LagObjective] = Field(default_factory=list)
    """Per-group time-lag objectives; the first whose ``groups`` matches applies."""
    default_lag_objective: Duration = 60.0
    """The objective of groups no entry of ``lag_objectives`` matches."""

    def lag_objective(self, group: str) -> tuple[float, str]:
        """(objective seconds, calendar) of a group: the first matching entry's, else
        the default under the target's calendar."""
        for entry in self.lag_objectives:
            if re.fullmatch(entry.groups, group):
                return entry.objective, entry.calendar or self.calendar
        return self.default_lag_objective, self.calendar
