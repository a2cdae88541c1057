"""The local stack: real services on free loopback ports, for tests, benchmarks and the demo."""

from .exporter import Exporter
from .pgbouncer import PgBouncer
from .pglite import TimescaleLite
from .postgres import Postgres
from .prometheus import Alertmanager, Prometheus
from .redis_server import Redis
from .services import Service, free_port, wait_for_http, wait_for_port
from .tansu import Tansu

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
