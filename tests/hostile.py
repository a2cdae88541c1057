"""Hostile peers for the fault suites: TCP servers that misbehave in one way each.

A real service cannot be made to announce a 2 GB reply or answer a byte a
second, so these are fakes, and only for that: each one forces an error path.
Every client the exporter speaks talks first, so a peer answers the first bytes
it receives (``close`` answers nothing: it hangs up at once).

``HostileFiles`` does the same for the kinds that read files: it puts a hostile
thing (a sparse 10 GB file, a FIFO, a link loop...) where a file is expected.

The suites record what they saw with ``record_fault``; the conftest prints the
kind x behaviour matrix at the end of the run.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

Behaviour = Literal["silent", "close", "garbage", "stream", "slow", "huge", "auth"]
BEHAVIOURS: tuple[Behaviour, ...] = ("silent", "close", "garbage", "stream", "slow", "huge", "auth")
"""In the matrix's column order."""

FAULTS: dict[tuple[str, str], str] = {}
"""(kind, behaviour) -> the reason the exporter gave, for the printed matrix."""


def record_fault(kind: str, behaviour: str, reason: str) -> None:
    """Note one cell of the fault matrix."""
    FAULTS[(kind, behaviour)] = reason


def fault_matrix() -> list[str]:
    """The recorded cells as tables, one row per kind ("-": not applicable or not run):
    the hostile peers first, then the hostile files and commands of the file kinds."""
    if not FAULTS:
        return []
    others = sorted({b for _, b in FAULTS} - set(BEHAVIOURS))
    lines: list[str] = []
    for columns in ([b for b in BEHAVIOURS if any(b == c for _, c in FAULTS)], others):
        kinds = sorted({k for k, b in FAULTS if b in columns})
        if not kinds:
            continue
        widths = [max(len(c), *(len(FAULTS.get((k, c), "-")) for k in kinds)) + 2 for c in columns]
        lines.append(
            "kind".ljust(10) + "".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
        )
        for kind in kinds:
            cells = (
                FAULTS.get((kind, c), "-").ljust(w) for c, w in zip(columns, widths, strict=True)
            )
            lines.append(kind.ljust(10) + "".join(cells))
        lines.append("")
    return lines[:-1]


@dataclass
class HostilePeer:
    """A TCP server on 127.0.0.1 that misbehaves as ``behaviour`` says.

    ``silent`` reads and never answers; ``close`` hangs up on accept; ``garbage``
    answers 4 KiB of random bytes and then stays silent; ``stream`` answers random
    bytes without end; ``slow`` answers ``reply`` (random bytes when empty) one byte
    a second; ``huge`` answers ``reply`` (a huge length announced in the kind's
    framing) and then filler without end; ``auth`` answers ``reply`` (the kind's
    "authentication failed") and then stays silent. ``replies`` lets a peer answer
    a few requests properly before it misbehaves (e.g. a handshake): the n-th
    chunk it receives is answered by ``replies[n](data)`` while there are any.
    """

    behaviour: Behaviour
    reply: bytes = b""
    replies: list[Callable[[bytes], bytes]] = field(default_factory=list)
    port: int = 0
    connections: int = 0
    sent: int = 0
    """Bytes written to clients so far (all connections)."""
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def address(self) -> str:
        """``127.0.0.1:port``."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            if self.behaviour == "close":
                return
            replies = list(self.replies)
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                if replies:
                    await self._send(writer, replies.pop(0)(data))
                    continue
                await self._misbehave(reader, writer)
                return
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()  # a clean close (FIN), as a peer that hangs up does

    async def _misbehave(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rng = random.Random(self.connections)
        if self.behaviour == "garbage":
            await self._send(writer, rng.randbytes(4096))
        elif self.behaviour == "slow":
            for byte in self.reply or rng.randbytes(4096):
                await self._send(writer, bytes([byte]))
                await asyncio.sleep(1.0)
        elif self.behaviour in ("stream", "huge"):
            await self._send(writer, self.reply if self.behaviour == "huge" else b"")
            filler = rng.randbytes(65536) if self.behaviour == "stream" else b"1" * 65536
            while not writer.is_closing():
                await self._send(writer, filler)
        elif self.behaviour == "auth":
            await self._send(writer, self.reply)
        while await reader.read(65536):  # silent from here on, until the client hangs up
            pass

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.sent += len(data)


@asynccontextmanager
async def hostile_peer(
    behaviour: Behaviour, reply: bytes = b"", replies: list[Callable[[bytes], bytes]] | None = None
) -> AsyncIterator[HostilePeer]:
    """A started ``HostilePeer``, stopped afterwards."""
    peer = HostilePeer(behaviour, reply, list(replies or []))
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@asynccontextmanager
async def hostile_peers(
    cases: Mapping[str, tuple[Behaviour, bytes]],
) -> AsyncIterator[dict[str, HostilePeer]]:
    """One started ``HostilePeer`` per case (name -> (behaviour, reply)), all stopped
    afterwards: the targets of an exporter configured with several hostile peers."""
    peers: dict[str, HostilePeer] = {}
    try:
        for name, (behaviour, reply) in cases.items():
            peers[name] = HostilePeer(behaviour, reply)
            await peers[name].start()
        yield peers
    finally:
        for peer in peers.values():
            await peer.stop()


@dataclass(frozen=True)
class Usage:
    """What the test process holds: the plateau a fault suite checks."""

    fds: int
    tasks: int
    threads: int
    rss_bytes: int
    max_rss_bytes: int

    @classmethod
    def now(cls) -> Usage:
        """Measured now (call from inside the event loop)."""
        with open("/proc/self/statm") as f:
            rss_pages = int(f.read().split()[1])
        return cls(
            fds=len(os.listdir("/proc/self/fd")),
            tasks=len(asyncio.all_tasks()),
            threads=threading.active_count(),
            rss_bytes=rss_pages * os.sysconf("SC_PAGE_SIZE"),
            max_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        )


FileBehaviour = Literal[
    "huge", "garbage", "non-utf8", "fifo", "stream", "unreadable", "not-a-file", "loop"
]
FILE_BEHAVIOURS: tuple[FileBehaviour, ...] = (
    "huge", "garbage", "non-utf8", "fifo", "stream", "unreadable", "not-a-file", "loop",
)  # fmt: skip
WRITE_ONLY = Path("/proc/sys/vm/compact_memory")
"""A kernel file of mode 0200: reading it is refused (EACCES) even to root."""
HUGE_BYTES = 10 << 30


def can_refuse_reads() -> bool:
    """Whether an unreadable file can be made here (root reads any chmod 000 file)."""
    return os.geteuid() != 0 or WRITE_ONLY.exists()


def file_behaviours_here() -> list[FileBehaviour]:
    """The ``FILE_BEHAVIOURS`` this machine can make: not ``unreadable`` when the
    tests run as root and no kernel file refuses reads."""
    return [b for b in FILE_BEHAVIOURS if b != "unreadable" or can_refuse_reads()]


class HostileFiles:
    """Puts a hostile thing where a file is expected; stops FIFO writers afterwards.

    ``huge`` is a sparse 10 GB file, ``garbage`` 4 KiB of random bytes, ``non-utf8``
    JSON-looking bytes that are not UTF-8, ``fifo`` a FIFO nobody writes to (open()
    blocks), ``stream`` a FIFO a writer fills without end, ``unreadable`` a file the
    exporter's user may not read, ``not-a-file`` a directory (``socket``: a UNIX
    socket), ``loop`` a symbolic link to itself.
    """

    def __init__(self) -> None:
        self.writers: list[subprocess.Popen[bytes]] = []
        self.sockets: list[socket.socket] = []

    def make(self, path: Path, behaviour: FileBehaviour, not_a_file: str = "directory") -> Path:
        """Replace whatever is at ``path`` with ``behaviour``."""
        self._clear(path)
        if behaviour == "huge":
            with path.open("wb") as f:
                f.truncate(HUGE_BYTES)
        elif behaviour == "garbage":
            path.write_bytes(random.Random(7).randbytes(4096))
        elif behaviour == "non-utf8":
            path.write_bytes(b'{"result": "ok\xff\xfe", "name": "\xc3\x28"}\n')
        elif behaviour in ("fifo", "stream"):
            os.mkfifo(path)
            if behaviour == "stream":  # <> opens without waiting for a reader; the
                # time limit ends a writer whose test was killed before its teardown
                script = f'exec 3<>"{path}"; exec timeout 300 cat /dev/zero >&3'
                writer = subprocess.Popen(["sh", "-c", script], start_new_session=True)
                self.writers.append(writer)
        elif behaviour == "unreadable":
            self._unreadable(path)
        elif behaviour == "not-a-file" and not_a_file == "socket":
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(str(path))
            self.sockets.append(sock)
        elif behaviour == "not-a-file":
            path.mkdir()
        else:
            os.symlink(path.name, path)
        return path

    @staticmethod
    def _unreadable(path: Path) -> None:
        if os.geteuid() != 0:
            path.write_text("{}")
            path.chmod(0)
        elif WRITE_ONLY.exists():
            os.symlink(WRITE_ONLY, path)
        else:
            pytest.skip("no file here refuses reads to root")

    @staticmethod
    def _clear(path: Path) -> None:
        if path.is_symlink() or path.is_file() or path.is_fifo() or path.is_socket():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)

    def close(self) -> None:
        """Stop the writers and close the sockets."""
        for writer in self.writers:
            os.killpg(writer.pid, signal.SIGKILL)  # timeout and its cat
            writer.wait(5)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def hostile_files() -> Iterator[HostileFiles]:
    """A ``HostileFiles`` cleaned up after the test."""
    files = HostileFiles()
    yield files
    files.close()
