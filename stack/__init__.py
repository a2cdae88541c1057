"""The local stack: real services on free loopback ports, for tests, benchmarks and the demo."""

from .pgbouncer import PgBouncer
from .pglite import TimescaleLite
from .services import (
    Alertmanager,
    Exporter,
    Postgres,
    Prometheus,
    Redis,
    Service,
    Tansu,
    free_port,
    wait_for_http,
    wait_for_port,
)

__all__ = [
    "Alertmanager",
    "Exporter",
    "PgBouncer",
    "Postgres",
    "Prometheus",
    "Redis",
    "Service",
    "Tansu",
    "TimescaleLite",
    "free_port",
    "wait_for_http",
    "wait_for_port",
]
