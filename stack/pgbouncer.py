"""PgBouncer (Debian's 1.18) in front of the stack's PostgreSQL, on a free loopback port.

Its settings are PgBouncer's defaults but for what puts it on loopback and lets
the stack's users in: a wildcard database entry pointing at the backend,
``auth_type = scram-sha-256`` with an ``auth_file`` of plain passwords (PgBouncer
then logs in to PostgreSQL with SCRAM too), no Unix socket, and the backend's
superuser as admin (the ``pgbouncer`` console: ``SHOW SERVERS``...). Nothing is
ignored at startup (no ``ignore_startup_parameters``): a client that sends a
parameter PgBouncer does not track is refused, as in a stock deployment.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from .postgres import Postgres, as_postgres_user, run_psql
from .services import LOOPBACK, Service, find_binary

PoolMode = Literal["session", "transaction", "statement"]


def _quoted(value: str) -> str:
    """An auth_file field: in double quotes, embedded ones doubled."""
    return '"' + value.replace('"', '""') + '"'


class PgBouncer(Service):
    """PgBouncer in ``pool_mode`` in front of ``backend``; runs as the ``postgres``
    user when root (PgBouncer refuses to run as root).

    ``users`` (name -> password) are the logins it accepts, the backend's
    superuser by default; each logs in to the backend with the same password, so a
    user PostgreSQL does not know passes PgBouncer and fails at the server.
    ``settings`` adds or overrides lines of the ``[pgbouncer]`` section.
    """

    name = "pgbouncer"

    def __init__(
        self,
        root: Path,
        backend: Postgres,
        pool_mode: PoolMode = "transaction",
        port: int | None = None,
        users: Mapping[str, str] | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(root / f"pgbouncer-{pool_mode}", port)
        self.backend = backend
        self.pool_mode = pool_mode
        self.users = dict(users or {backend.user: backend.password})
        self.settings = dict(settings or {})
        self.config = self.dir / "pgbouncer.ini"

    def popen_kwargs(self) -> dict[str, Any]:
        return as_postgres_user()

    def prepare(self) -> None:
        auth_file = self.dir / "userlist.txt"
        auth_file.write_text("".join(f"{_quoted(u)} {_quoted(p)}\n" for u, p in self.users.items()))
        auth_file.chmod(0o600)
        settings = {
            "listen_addr": LOOPBACK,
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "scram-sha-256",
            "auth_file": str(auth_file),
            "admin_users": self.backend.user,
            "pool_mode": self.pool_mode,
            **self.settings,
        }
        self.config.write_text(
            f"[databases]\n* = host={LOOPBACK} port={self.backend.port}\n\n[pgbouncer]\n"
            + "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        kw = as_postgres_user()
        if kw:
            self.dir.chmod(0o755)
            for path in (self.dir, auth_file, self.config):
                os.chown(path, kw["user"], kw["group"])

    def command(self) -> list[str]:
        return [find_binary("pgbouncer", "/usr/sbin/pgbouncer"), str(self.config)]

    def dsn(self, database: str = "postgres") -> str:
        """A libpq URL for the backend's superuser through PgBouncer (holds the password)."""
        return f"postgresql://{self.backend.user}:{self.backend.password}@{self.address}/{database}"

    def psql(
        self, sql: str, database: str = "postgres", timeout: float = 30.0, as_csv: bool = False
    ) -> str:
        """Run SQL through PgBouncer as the backend's superuser (the simple query
        protocol); returns stdout: unaligned tuples, or CSV with a header line."""
        output = ("-q", "--csv") if as_csv else ("-qAt",)
        user, password = self.backend.user, self.backend.password
        return run_psql(self.port, user, password, database, sql, timeout, output)

    def show(self, what: str) -> list[dict[str, str]]:
        """``SHOW what`` on the admin console (``SERVERS``, ``POOLS``...), a dict per row."""
        text = self.psql(f"SHOW {what}", "pgbouncer", as_csv=True)
        return list(csv.DictReader(io.StringIO(text)))

    def wait_ready(self) -> None:
        super().wait_ready()
        self.psql("SELECT 1")  # through to the backend
