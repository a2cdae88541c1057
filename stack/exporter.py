"""The exporter as a subprocess: started from this checkout, stopped with SIGTERM."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .services import Service, wait_for_http


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
