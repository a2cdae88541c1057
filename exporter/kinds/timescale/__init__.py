"""TimescaleDB/PostgreSQL: reach, recovery, replication, jobs and hypertable freshness."""

from .probe import KIND

__all__ = ["KIND"]
