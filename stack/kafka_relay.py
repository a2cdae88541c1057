"""A Kafka relay in front of one real broker: terminates TLS, or rewrites Metadata.

Run as ``python -m stack.kafka_relay --listen PORT --upstream PORT [options]``. It
passes every byte between a client and the broker unchanged, except:

- ``--tls-cert FILE --tls-key FILE``: clients connect with TLS; the broker behind is
  plain. Tansu 0.6 cannot serve TLS itself (``stack.kafka_cluster`` says why).
- ``--brokers 1=127.0.0.1:P1,2=127.0.0.1:P2,...``: each Metadata answer (v0-v5, the
  versions aiokafka 0.14 sends) lists these brokers instead of the one that answered,
  with the first as controller, and partition ``p`` of every topic led by the
  ``p % n``-th of them (its only replica and in-sync replica). Tansu 0.6 lists only
  itself, always as node 111, so several Tansu brokers cannot show up as one cluster
  otherwise; every other answer (ListGroups, DescribeGroups, OffsetFetch,
  ListOffsets, ...) is the real broker's own.

The relay holds no state beyond its connections: it stops with SIGTERM, and a
stopped relay is a broker whose port refuses connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import signal
import ssl
import struct
from typing import Any

from aiokafka.protocol import metadata

LOOPBACK = "127.0.0.1"
METADATA = 3
_HEADER = struct.Struct(">ihhi")  # size, api_key, api_version, correlation_id
_INT = struct.Struct(">i")
RESPONSES: dict[int, Any] = {v: getattr(metadata, f"MetadataResponse_v{v}") for v in range(6)}


def parse_brokers(text: str) -> list[tuple[int, str, int]]:
    """``1=h:p,2=h:p`` -> [(1, h, p), (2, h, p)]."""
    out = []
    for item in filter(None, text.split(",")):
        node, _, address = item.partition("=")
        host, _, port = address.rpartition(":")
        out.append((int(node), host, int(port)))
    return out


def rewrite_metadata(version: int, body: bytes, brokers: list[tuple[int, str, int]]) -> bytes:
    """A Metadata answer's body (after the correlation id) with ``brokers`` listed."""
    response = RESPONSES[version].decode(io.BytesIO(body))
    fields = {name: getattr(response, name) for name in response.SCHEMA.names}
    ids = [node for node, _, _ in brokers]
    if version == 0:
        fields["brokers"] = [(n, h, p) for n, h, p in brokers]
    else:
        fields["brokers"] = [(n, h, p, None) for n, h, p in brokers]
        fields["controller_id"] = ids[0]
    topics = []
    for topic in fields["topics"]:
        *head, partitions = topic
        rewritten = []
        for part in partitions:
            error, index, _leader, _replicas, _isr, *offline = part
            leader = ids[index % len(ids)]
            rewritten.append((error, index, leader, [leader], [leader], *([[]] if offline else [])))
        topics.append((*head, rewritten))
    fields["topics"] = topics
    encoded: bytes = RESPONSES[version](*fields.values()).encode()
    return encoded


class Relay:
    """One listening port relaying to one upstream broker port."""

    def __init__(
        self,
        upstream: int,
        brokers: list[tuple[int, str, int]] | None,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.upstream = upstream
        self.brokers = brokers
        self.tls = tls
        self.tasks: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Relay one client connection until either side closes."""
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.upstream)
        except OSError:
            writer.transport.abort()
            self.tasks.discard(task)
            return
        metadata_versions: dict[int, int] = {}
        try:
            await _first(
                self._requests(reader, up_writer, metadata_versions),
                self._responses(up_reader, writer, metadata_versions),
            )
        finally:
            writer.transport.abort()
            up_writer.transport.abort()
            self.tasks.discard(task)

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, versions: dict[int, int]
    ) -> None:
        if self.brokers is None:
            return await _pipe(reader, writer)
        while True:
            head = await reader.readexactly(_HEADER.size)
            size, api_key, api_version, correlation_id = _HEADER.unpack(head)
            rest = await reader.readexactly(size + 4 - _HEADER.size)
            if api_key == METADATA:
                versions[correlation_id] = api_version
            writer.write(head + rest)
            await writer.drain()

    async def _responses(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, versions: dict[int, int]
    ) -> None:
        if self.brokers is None:
            return await _pipe(reader, writer)
        while True:
            (size,) = _INT.unpack(await reader.readexactly(4))
            frame = await reader.readexactly(size)
            (correlation_id,) = _INT.unpack(frame[:4])
            version = versions.pop(correlation_id, None)
            if version is not None:
                body = rewrite_metadata(version, frame[4:], self.brokers)
                frame = frame[:4] + body
            writer.write(_INT.pack(len(frame)) + frame)
            await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def _first(*coros: Any) -> None:
    """Run both directions until one ends (a close, a reset, a short frame)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t


async def serve(args: argparse.Namespace) -> None:
    """Listen until SIGTERM or SIGINT."""
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    brokers = parse_brokers(args.brokers) if args.brokers else None
    relay = Relay(args.upstream, brokers, tls)
    server = await asyncio.start_server(relay.handle, LOOPBACK, args.listen, ssl=tls)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    for task in list(relay.tasks):
        task.cancel()
    await asyncio.gather(*relay.tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--brokers", default="")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
