"""PostgreSQL (Debian package): a cluster of its own, run as the postgres user when root."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .services import LOOPBACK, Service, find_binary


def _postgres_bin(tool: str) -> str:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return find_binary(tool, *(str(v / tool) for v in versions))


def as_postgres_user() -> dict[str, Any]:
    """``Popen`` arguments that run a server as the ``postgres`` user when we are root
    (PostgreSQL and PgBouncer refuse to run as root)."""
    if os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam("postgres")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def run_psql(
    port: int,
    user: str,
    password: str,
    database: str,
    sql: str,
    timeout: float,
    output: tuple[str, ...] = ("-qAt",),
) -> str:
    """Run SQL with psql over loopback TCP; stdout, or ``CalledProcessError``."""
    out = subprocess.run(
        [
            _postgres_bin("psql"),
            *("-h", LOOPBACK, "-p", str(port), "-U", user, "-d", database),
            *("-v", "ON_ERROR_STOP=1", *output, "-c", sql),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"},
    )
    return str(out.stdout)


class Postgres(Service):
    """A PostgreSQL cluster made with initdb; runs as the ``postgres`` user when root."""

    name = "postgres"
    user = "postgres"

    def __init__(self, root: Path, port: int | None = None) -> None:
        super().__init__(root, port)
        self.password = secrets.token_urlsafe(12)
        self.data = self.dir / "data"

    def popen_kwargs(self) -> dict[str, Any]:
        return as_postgres_user()

    def own_dir(self) -> dict[str, Any]:
        """Hand the service directory to the postgres user (when root); returns the
        Popen arguments that run a command as that user."""
        kw = as_postgres_user()
        if kw:
            for parent in (self.dir.parent, *self.dir.parent.parents):
                if parent.stat().st_mode & 0o001 == 0:  # postgres must traverse to its dir
                    parent.chmod(parent.stat().st_mode | 0o011)
            os.chown(self.dir, kw["user"], kw["group"])
        return kw

    def prepare(self) -> None:
        kw = self.own_dir()
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if kw:
            os.chown(pwfile, kw["user"], kw["group"])
        out = subprocess.run(
            [
                _postgres_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=False,
            capture_output=True,
            **kw,
        )
        pwfile.unlink()
        if out.returncode != 0:
            raise RuntimeError(f"initdb failed: {out.stderr.decode(errors='replace')}")

    def command(self) -> list[str]:
        return [
            _postgres_bin("postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            f"unix_socket_directories={self.dir}",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=100",
        ]

    def stop(self) -> None:
        """Fast shutdown (SIGINT), as ``pg_ctl stop`` does: open sessions are closed.

        SIGTERM alone is a smart shutdown, which waits for every client (a pooled
        connection of the exporter) to disconnect.
        """
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.send_signal(signal.SIGINT)
        super().stop()

    def _processes(self) -> list[int]:
        """The postmaster and its children (each backend runs in a session of its own)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        pids = [self.proc.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid:
                    pids.append(int(stat.parent.name))
        return pids

    def pause(self) -> None:
        """SIGSTOP the postmaster and every backend: a hung server.

        Stopping the postmaster alone leaves existing sessions answering.
        """
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the postmaster and its backends after pause."""
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def dsn(self, database: str = "postgres") -> str:
        """A libpq URL for the superuser (holds the password: keep it out of logs)."""
        return f"postgresql://{self.user}:{self.password}@{self.address}/{database}"

    def psql(self, sql: str, database: str = "postgres", timeout: float = 60.0) -> str:
        """Run SQL over TCP as the superuser; returns stdout.

        TCP rather than the socket directory: pytest makes its temporary root
        private at every session start, which would lock the ``postgres`` user
        out of a socket directory below it.
        """
        return run_psql(self.port, self.user, self.password, database, sql, timeout)

    def wait_ready(self) -> None:
        super().wait_ready()
        end = time.monotonic() + self.ready_timeout
        while time.monotonic() < end:
            with contextlib.suppress(subprocess.CalledProcessError):
                self.psql("SELECT 1")
                return
            time.sleep(0.1)
        raise TimeoutError("postgres did not accept queries")
