"""Redis target configuration: one server, a Sentinel group or a Cluster, and the keys to watch."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ModelWrapValidatorHandler, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from ...model import (
    Duration,
    HostPort,
    HostTLSConfig,
    Name,
    PasswordMixin,
    StrictModel,
    TargetBase,
)

DEFAULT_BUDGET = 1 << 20
"""The kind's ``response_budget``: docs/redis.md, a busy, fully configured target read 82 KB."""


class HeartbeatKey(StrictModel):
    """A key (or hash field) where a platform component writes a Unix timestamp."""

    name: Name
    key: str = Field(min_length=1)
    field: str | None = None
    max_gap: Duration = 60.0
    """The longest acceptable silence between two writes (exported, for the rules)."""
    calendar: Name | None = None
    """The calendar the writer follows; defaults to the target's."""


class StreamKey(StrictModel):
    """A Redis stream whose length and consumer groups are reported."""

    name: Name
    key: str = Field(min_length=1)


class Canary(StrictModel):
    """Opt-in write/read round trip on a dedicated key that expires by itself."""

    key: str | None = Field(default=None, min_length=1)
    """Defaults to ``tradeops:canary:<target name>``."""
    ttl: Duration = 60.0


class RedisConnection(PasswordMixin):
    """How to reach and log in to one Redis server: the event-bus canary's Redis
    transport. ``RedisTarget`` has the same fields under the same names and rules,
    but declares its own: its ``address`` is optional (Sentinel and Cluster
    targets have none), and inheriting would reorder its fields, and with them
    the order its problems are reported in."""

    address: HostPort
    username: str | None = None
    db: int = Field(default=0, ge=0, le=15)
    tls: HostTLSConfig | None = None


class RedisTarget(TargetBase, PasswordMixin):
    """One Redis server (``address``), the master a Sentinel group watches
    (``sentinels`` and ``master``), or a Redis Cluster (``cluster`` seeds). The
    credentials and TLS settings apply to every server, Sentinel and node."""

    address: HostPort | None = None
    sentinels: list[HostPort] | None = Field(default=None, min_length=1, max_length=16)
    """Sentinels to ask for the master's address (one answering is enough)."""
    master: Name | None = None
    """The master's name in the Sentinels' configuration (``sentinel monitor NAME``)."""
    cluster: list[HostPort] | None = Field(default=None, min_length=1, max_length=16)
    """Cluster nodes to ask for the cluster's view (one answering is enough)."""
    max_nodes: int = Field(default=64, ge=1, le=1000)
    """A cluster's nodes with series of their own, at most (primaries first)."""
    username: str | None = None
    db: int = Field(default=0, ge=0, le=15)
    tls: HostTLSConfig | None = None
    canary: Canary | None = None
    heartbeats: list[HeartbeatKey] = Field(default_factory=list)
    streams: list[StreamKey] = Field(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _address_unless_another_mode(
        cls, data: Any, handler: ModelWrapValidatorHandler[RedisTarget]
    ) -> RedisTarget:
        """Without ``sentinels`` or ``cluster`` the target is one server and ``address``
        is a required field, as it was before the other modes (the other fields are
        still checked, and their problems reported with it)."""
        if not isinstance(data, dict) or any(data.get(k) is not None for k in _MODES):
            return handler(data)
        problems = [InitErrorDetails(type="missing", loc=("address",), input=data)]
        try:
            handler({**data, "address": "127.0.0.1:6379"})
        except ValidationError as exc:
            problems += [_details(e) for e in exc.errors()]
        raise ValidationError.from_exception_data(cls.__name__, problems)

    @model_validator(mode="after")
    def _one_mode(self) -> RedisTarget:
        modes = [self.address, self.sentinels, self.cluster]
        if sum(m is not None for m in modes) != 1:
            raise ValueError("give exactly one of address, sentinels or cluster")
        if self.sentinels is not None and self.master is None:
            raise ValueError("sentinels needs master: the name the Sentinels monitor")
        if self.sentinels is None and self.master is not None:
            raise ValueError("master goes with sentinels")
        if self.cluster is None and "max_nodes" in self.model_fields_set:
            raise ValueError("max_nodes goes with cluster")
        if self.cluster is not None:
            keyed = [f for f in ("canary", "heartbeats", "streams", "db") if self._set(f)]
            if keyed:
                raise ValueError(
                    f"{', '.join(keyed)}: not supported with cluster (a cluster target reports"
                    " the cluster; probe a node's keys with a target of its own)"
                )
        return self

    def _set(self, name: str) -> bool:
        """True when the field was given a value other than its default."""
        return name in self.model_fields_set and getattr(self, name) not in (None, [], 0)


_MODES = ("address", "sentinels", "cluster")


def _details(error: Any) -> InitErrorDetails:
    """A validation error's details as pydantic takes them back (known types only)."""
    details = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
    if "ctx" in error:
        details["ctx"] = error["ctx"]
    return details
