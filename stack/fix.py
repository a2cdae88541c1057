"""The FIX acceptor as a stack service (a subprocess, so tests can pause or kill it)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .services import Service


class FixAcceptor(Service):
    """A QuickFIX 4.4 acceptor playing a venue (``stack/fix_acceptor.py``).

    ``sessions`` are the initiators' CompIDs it accepts, each optionally with a
    password (checked against Logon tag 554). Its FileStore is in ``store_dir``
    and its FileLog in ``log_dir``.
    """

    name = "fix"
    ready_timeout = 30.0

    def __init__(
        self,
        root: Path,
        port: int | None = None,
        sender: str = "VENUE",
        sessions: Sequence[str] = ("MONITOR", "SIM"),
        passwords: dict[str, str] | None = None,
    ) -> None:
        super().__init__(root, port)
        self.sender = sender
        self.sessions = list(sessions)
        self.passwords = dict(passwords or {})

    @property
    def store_dir(self) -> Path:
        """The FileStorePath."""
        return self.dir / "store"

    @property
    def log_dir(self) -> Path:
        """The FileLogPath."""
        return self.dir / "log"

    def prefix(self, initiator: str, begin_string: str = "FIX.4.4") -> str:
        """The file prefix QuickFIX uses for the session with ``initiator``."""
        return f"{begin_string}-{self.sender}-{initiator}"

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "stack.fix_acceptor",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
            "--sender",
            self.sender,
        ]
        for session in self.sessions:
            spec = session
            if session in self.passwords:
                pw_file = self.dir / f"{session}.password"
                pw_file.write_text(self.passwords[session] + "\n")
                pw_file.chmod(0o600)
                spec = f"{session}:{pw_file}"
            cmd += ["--session", spec]
        return cmd
