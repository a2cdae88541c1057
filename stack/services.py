"""Real services on free loopback ports, each in its own directory.

Used by the tests (through pytest fixtures), the benchmarks and the demo. Every
service can be started, stopped, paused (SIGSTOP: a hung server) and resumed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, ClassVar, Self

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
