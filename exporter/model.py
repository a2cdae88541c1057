"""Building blocks of the configuration models: durations, secrets, the target base."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import ssl
import stat
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    field_validator,
    model_validator,
)

from .redact import REDACTOR

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_ENV_REF_RE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_NAME_RE = re.compile(NAME_PATTERN)


def check_name(value: str) -> str:
    """Names become label values: keep them short and plain."""
    if not _NAME_RE.fullmatch(value):  # match() would let "name\n" through the ``$``
        raise ValueError(
            "must start with a letter or digit and hold only letters, digits and _ . : - "
            "(at most 128 characters)"
        )
    return value


Name = Annotated[str, AfterValidator(check_name)]
"""A config name that becomes a label value."""


def check_regex(pattern: str) -> str:
    """A regular expression that compiles."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
    return pattern


Regex = Annotated[str, AfterValidator(check_regex)]
"""A regular expression, checked at load."""


MIN_INTERVAL_SECONDS = 0.1
"""The shortest probe interval: anything faster only burns CPU (and the target's)."""


def _seconds(value: Any) -> float:
    """A duration's seconds, finite (YAML's ``.nan`` and ``.inf`` are floats too)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15s or 500ms")
    try:
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
        else:
            raise ValueError("expected a duration such as 15s or 500ms")
    except OverflowError:  # an integer too large for a float
        seconds = math.inf
    if not math.isfinite(seconds):
        raise ValueError("must be a finite duration such as 15s or 500ms")
    return seconds


def parse_duration(value: Any) -> float:
    """Parse ``250ms``, ``15s``, ``2m``, ``1h`` or a bare number of seconds: finite
    and greater than zero."""
    seconds = _seconds(value)
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A finite duration greater than zero, in seconds."""


def parse_interval(value: Any) -> float:
    """A duration that is a probe interval: at least ``MIN_INTERVAL_SECONDS``."""
    seconds = parse_duration(value)
    if seconds < MIN_INTERVAL_SECONDS:
        raise ValueError(
            f"must be at least {MIN_INTERVAL_SECONDS * 1000:g}ms"
            " (a shorter interval only burns CPU)"
        )
    return seconds


Interval = Annotated[float, BeforeValidator(parse_interval)]
"""How often a target is probed: a duration of at least 100 ms."""


def parse_duration_or_zero(value: Any) -> float:
    """Like ``parse_duration``, but zero (``0``, ``0s``) is accepted."""
    return 0.0 if _seconds(value) == 0 else parse_duration(value)


DurationOrZero = Annotated[float, BeforeValidator(parse_duration_or_zero)]
"""A duration that may be zero (a warm-up that can be switched off)."""

_SIZE_RE = re.compile(r"(\d+)\s*(B|KiB|MiB|GiB)?")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
MIN_RESPONSE_BUDGET = 64 * 1024
MAX_RESPONSE_BUDGET = 1 << 30


def parse_response_budget(value: Any) -> int:
    """``16MiB``, ``512KiB`` or a number of bytes, between 64 KiB and 1 GiB."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a size such as 16MiB, 512KiB or a number of bytes")
    if isinstance(value, int):
        size = value
    elif m := _SIZE_RE.fullmatch(value.strip()):
        size = int(m.group(1)) * _SIZE_UNITS[m.group(2)]
    else:
        raise ValueError("expected a size such as 16MiB, 512KiB or a number of bytes")
    if not MIN_RESPONSE_BUDGET <= size <= MAX_RESPONSE_BUDGET:
        raise ValueError("must be between 64KiB and 1GiB")
    return size


ResponseBudget = Annotated[int, BeforeValidator(parse_response_budget)]
"""Bytes a target's peers may send in one probe run (``16MiB``)."""

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""In ``datetime.weekday()`` order."""


def check_timezone(value: str) -> str:
    """An IANA time zone name known to this machine."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


TimeZone = Annotated[str, AfterValidator(check_timezone)]
"""An IANA time zone such as ``America/New_York``, checked at load."""


class Secret:
    """A secret value. Its text form is masked; ``reveal()`` gives the value.

    Every secret is registered with the redactor so that it is masked in any
    log line or error message that happens to contain it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        REDACTOR.add(value)

    def reveal(self) -> str:
        """The secret itself; pass it only to the client library that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _secret_from_env_ref(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a ${ENV_VAR} reference")
    m = _ENV_REF_RE.fullmatch(value)
    if not m:
        raise ValueError(
            "inline secrets are not accepted: use a ${ENV_VAR} reference or the *_file field"
        )
    env = os.environ.get(m.group(1))
    if env is None:
        raise ValueError(f"environment variable {m.group(1)} is not set")
    return Secret(env)


MAX_SECRET_FILE_BYTES = 64 * 1024


def _read_secret_file(path: Path) -> str:
    """A secret file's text: a regular file (a FIFO would hang the load) of at most 64 KiB."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"secret file {path} is not a regular file")
        data = f.read(MAX_SECRET_FILE_BYTES + 1)
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ValueError(f"secret file {path} is larger than 64 KiB")
    return data.decode("utf-8")


def _secret_from_file(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str | Path):
        raise ValueError("expected a file path")
    try:
        text = _read_secret_file(Path(value))
    except OSError as exc:
        raise ValueError(f"cannot read secret file {value}: {exc.strerror}") from None
    except UnicodeDecodeError:  # its message would quote a byte of the secret
        raise ValueError(f"secret file {value} is not UTF-8 text") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise ValueError(f"secret file {value} is empty")
    return Secret(secret)


_mask = PlainSerializer(lambda s: "***", return_type=str)

EnvSecret = Annotated[Secret, BeforeValidator(_secret_from_env_ref), _mask]
"""A secret given as ``${ENV_VAR}``; literal values are rejected."""

FileSecret = Annotated[Secret, BeforeValidator(_secret_from_file), _mask]
"""A secret read from the named file (trailing newline stripped)."""


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors; models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


ALWAYS = "always"
"""The built-in calendar: open at all times, no warm-up."""


class TargetBase(StrictModel):
    """Fields every target has. ``interval``/``timeout`` default from ``global``."""

    name: Name
    interval: Interval | None = None
    timeout: Duration | None = None
    calendar: Name = ALWAYS
    """The trading calendar the target follows (see ``calendars:``)."""
    response_budget: ResponseBudget | None = None
    """What the target's peers may send in one run; the kind's default when unset."""

    @property
    def interval_s(self) -> float:
        """The effective interval (defaults are filled in at load)."""
        assert self.interval is not None
        return self.interval

    @property
    def timeout_s(self) -> float:
        """The effective deadline of one run (defaults are filled in at load)."""
        assert self.timeout is not None
        return self.timeout


class PasswordMixin(StrictModel):
    """``password: ${ENV}`` or ``password_file: PATH``, never both, never inline."""

    password: EnvSecret | None = None
    password_file: FileSecret | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> PasswordMixin:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        return self

    def password_value(self) -> str | None:
        """The password, from whichever source was configured."""
        secret = self.password or self.password_file
        return secret.reveal() if secret else None


class TLSConfig(StrictModel):
    """Client-side TLS. Files are read when the connection is set up."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _pair(self) -> TLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: {path} is not a readable file")
        return self

    def context(self) -> ssl.SSLContext:
        """An SSL context for a client connection."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.cert_file and self.key_file:
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


class HostTLSConfig(TLSConfig):
    """TLS for a client that cannot send another name than the host it connects to
    (redis-py, aiokafka's per-broker connections, libpq): ``server_name`` is refused,
    not silently ignored."""

    @field_validator("server_name")
    @classmethod
    def _no_server_name(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "not supported for this kind of target: the certificate must name"
                " the host in the address"
            )
        return value


def parse_host_port(value: str, default_port: int | None = None) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too); raises ValueError with a clear message."""
    host, sep, port = value.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError(
                "expected host:port (the value is not echoed: it may hold credentials)"
            )
        host, port = value, str(default_port)
    host = host.strip("[]")
    if not _valid_host(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected host:port (the value is not echoed: it may hold credentials)")
    return host, int(port)


_HOSTNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$")


def _valid_host(host: str) -> bool:
    """A DNS name, an IPv4 address or an IPv6 address: nothing else (``user:pass@host``
    would put credentials into a ``/probe`` target label)."""
    if _HOSTNAME.match(host):
        return True
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def check_host_port(value: str) -> str:
    """``host:port``, checked without echoing the value."""
    parse_host_port(value)
    return value


HostPort = Annotated[str, AfterValidator(check_host_port)]
"""A ``host:port`` address."""
