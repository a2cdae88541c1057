"""Event-bus target configuration: the health endpoint, its mapping and the canary.

The canary's transports take the Kafka and Redis kinds' connection schemas
(``KafkaConnection``, ``RedisConnection``); the old Kafka spellings are mapped
by ``legacy``. Importing this module imports no client library.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ...budget import format_size
from ...model import Duration, EnvSecret, FileSecret, StrictModel, TargetBase, TLSConfig
from ..kafka.config import KafkaConnection
from ..redis.config import RedisConnection
from . import legacy
from .mapping import FieldMap, Resolved, parse_path, resolve_mapping

RESPONSE_BUDGET = 4 << 20
"""The kind's default ``response_budget``: a body of ``max_response_bytes`` (1 MiB by
default), its headers (aiohttp reads at most 128 lines of 8 KiB) and the canary's reads."""
BUDGET_HEADROOM = RESPONSE_BUDGET - (1 << 20)
"""What the budget holds besides the body: the headers and the canary's reads."""


class KafkaCanary(KafkaConnection):
    """Kafka transport: a dedicated topic (partition 0), read without a consumer group.
    Reached as a Kafka target reaches its cluster (``bootstrap_servers``, ``tls``, ``sasl``)."""

    client_id: str = "tradeops-exporter-canary"
    topic: str = Field(default="tradeops.eventbus.canary", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    create_topic: bool = True
    """Create the topic (1 partition) when it does not exist."""
    _renames: tuple[legacy.Rename, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _old_spellings(
        cls, data: Any, handler: ModelWrapValidatorHandler[KafkaCanary]
    ) -> KafkaCanary:
        """Old fields are mapped to the schema; their problems are reported with the others'."""
        new, renames, problems = legacy.upgrade(data)
        if problems:
            try:
                handler(new)
            except ValidationError as exc:
                problems += [legacy.details(e) for e in exc.errors()]
            raise ValidationError.from_exception_data(cls.__name__, problems)
        canary = handler(new)
        canary._renames = renames
        return canary

    @property
    def renames(self) -> tuple[legacy.Rename, ...]:
        """The deprecated fields this section was given in (empty when none)."""
        return self._renames


class RedisCanary(RedisConnection):
    """Redis transport: a dedicated stream, trimmed to ``maxlen`` entries on every add."""

    stream: str | None = Field(default=None, min_length=1)
    """Defaults to ``tradeops:eventbus:canary:<target name>``."""
    maxlen: int = Field(default=1000, ge=10, le=1_000_000)


class CanaryConfig(StrictModel):
    """The optional ``canary`` section: exactly one transport."""

    kafka: KafkaCanary | None = None
    redis: RedisCanary | None = None
    count: int = Field(default=1, ge=1, le=20)
    """Canaries published per run (one at a time, each awaited)."""
    deadline: Duration = 2.0
    """A canary not read back this long after publishing is lost."""

    @model_validator(mode="after")
    def _one_transport(self) -> CanaryConfig:
        if (self.kafka is None) == (self.redis is None):
            raise ValueError("give exactly one transport: kafka or redis")
        return self

    @property
    def transport_name(self) -> str:
        """``kafka`` or ``redis``."""
        return "kafka" if self.kafka is not None else "redis"


class EventBusTarget(TargetBase):
    """One runtime: its health endpoint and, optionally, a canary on its bus transport."""

    url: str
    token: EnvSecret | None = None
    token_file: FileSecret | None = None
    tls: TLSConfig | None = None
    max_response_bytes: int = Field(default=1_048_576, ge=256, le=64 * 1_048_576)
    root: str = ""
    """JSON path of the event-bus snapshot inside the document (default: the document)."""
    default_mapping: bool = True
    mapping: dict[str, FieldMap | None] = Field(default_factory=dict)
    canary: CanaryConfig | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("root")
    @classmethod
    def _root(cls, value: str) -> str:
        parse_path(value)
        return value

    @field_validator("mapping")
    @classmethod
    def _mapping(
        cls, value: dict[str, FieldMap | None], info: ValidationInfo
    ) -> dict[str, FieldMap | None]:
        if "root" in info.data:
            resolve_mapping(value, info.data["root"], info.data.get("default_mapping", True))
        return value

    @model_validator(mode="after")
    def _one_token(self) -> EventBusTarget:
        if self.token is not None and self.token_file is not None:
            raise ValueError("give token or token_file, not both")
        return self

    @model_validator(mode="before")
    @classmethod
    def _budget_fits_the_body(cls, data: Any) -> Any:
        """Without a ``response_budget``, a larger ``max_response_bytes`` raises it too."""
        if isinstance(data, dict) and data.get("response_budget") is None:
            body = data.get("max_response_bytes")
            if type(body) is int and body + BUDGET_HEADROOM > RESPONSE_BUDGET:
                data = {**data, "response_budget": body + BUDGET_HEADROOM}
        return data

    @model_validator(mode="after")
    def _body_within_budget(self) -> EventBusTarget:
        budget = self.response_budget or RESPONSE_BUDGET
        if self.max_response_bytes > budget:
            raise ValueError(
                f"max_response_bytes ({self.max_response_bytes}) is over the response budget"
                f" ({format_size(budget)}): raise response_budget with it"
            )
        return self

    @property
    def fields(self) -> tuple[Resolved, ...]:
        """The effective mapping (defaults applied)."""
        return resolve_mapping(self.mapping, self.root, self.default_mapping)

    def token_value(self) -> str | None:
        """The bearer token, from whichever source was configured."""
        secret = self.token or self.token_file
        return secret.reveal() if secret else None


_BAD_URL = "expected an http:// or https:// URL"
_NAME = re.compile(r"[^/\\?#@\[\]:]+")
"""A host name: no delimiter (what else it holds is the resolver's to refuse)."""


def check_url(value: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (and a port if any), without
    credentials; the message never echoes the value."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError unless the port is a number below 65536
    except ValueError:
        raise ValueError(_BAD_URL) from None
    if parts.scheme not in ("http", "https") or not _good_host(parts.netloc):
        raise ValueError(_BAD_URL)
    if parts.username or parts.password:
        raise ValueError("credentials in the URL are not accepted: use token or token_file")
    return value


def _good_host(netloc: str) -> bool:
    """Whether the host of ``netloc`` (a checked port and any credentials around it)
    is one the HTTP client can send a request to: what it refuses, this refuses."""
    host = netloc.rpartition("@")[2]
    if ":" in host and not host.endswith("]"):
        host = host.rpartition(":")[0]
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    if not _NAME.fullmatch(host):
        return False
    try:
        if not host.isascii():
            if "%" in host:
                return False
            host.encode("idna")
        for label in host.split("."):
            if label.startswith("xn--"):
                label.encode().decode("idna")
    except UnicodeError:
        return False
    return True


def log_deprecations(targets: Mapping[str, Sequence[TargetBase]]) -> list[tuple[str, str]]:
    """Log the deprecated fields of every event-bus target, once per config load (the
    kind's ``cross_check``, which runs once per load); no problems of its own."""
    for target in targets.get("eventbus", ()):
        if isinstance(target, EventBusTarget) and target.canary and target.canary.kafka:
            legacy.warn(target.name, target.canary.kafka.renames)
    return []
