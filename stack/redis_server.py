"""Redis (Debian package) on a free loopback port."""

from __future__ import annotations

from pathlib import Path

from .services import LOOPBACK, Service, find_binary


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
