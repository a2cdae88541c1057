"""The response budget: what a peer may send in one run, and the chunked hand-over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic import ValidationError

from exporter.budget import CHUNK, BoundedProtocol, BudgetExceeded, ReadBudget, format_size
from exporter.model import TargetBase, parse_response_budget
from exporter.probe import KindRuntime, ProbeContext, ProbeKind, ProbeResult, ProbeState
from exporter.scheduler import run_probe

from .helpers import eventually


@asynccontextmanager
async def _sender(payload: bytes) -> AsyncIterator[int]:
    """A real TCP server on loopback that writes ``payload`` and hangs up."""

    async def serve(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def _holds(cond: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return cond()

    return check


async def _open(port: int, budget: ReadBudget) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.create_connection(
        lambda: BoundedProtocol(asyncio.StreamReaderProtocol(reader), budget), "127.0.0.1", port
    )
    return reader


async def test_a_reply_within_the_budget_arrives_whole_with_its_end() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    budget = ReadBudget(2 << 20)
    async with _sender(payload) as port:
        reader = await _open(port, budget)
        assert await reader.read() == payload  # read() returns at EOF: the end came after the data
    assert budget.used == len(payload) and not budget.exceeded


async def test_a_reply_over_the_budget_aborts_the_connection() -> None:
    budget = ReadBudget(256 << 10)
    async with _sender(b"x" * (4 << 20)) as port:
        reader = await _open(port, budget)
        with pytest.raises(BudgetExceeded, match="response budget of 256KiB"):
            await reader.read()
    assert budget.exceeded
    assert budget.used < (4 << 20)  # stopped reading once over


async def test_data_is_handed_over_a_chunk_per_loop_iteration() -> None:
    """A client parsing a burst yields between chunks: another task gets the loop."""
    sizes: list[int] = []
    ticks = 0

    class Counting(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            sizes.append(len(data))

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    wrapper = BoundedProtocol(Counting(), ReadBudget(1 << 20))
    transport = _NullTransport()
    wrapper.connection_made(transport)
    wrapper.data_received(b"y" * (10 * CHUNK))
    assert transport.flow == ["pause"]  # a backlog: the peer waits
    await eventually(_holds(lambda: sum(sizes) == 10 * CHUNK))
    task.cancel()
    assert sizes == [CHUNK] * 10
    assert ticks >= 9  # the ticker ran between the chunks
    assert transport.flow == ["pause", "resume"]


async def test_a_buffered_protocol_gets_the_bytes_in_its_own_buffer() -> None:
    got = bytearray()

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(1000)  # smaller than a chunk: filled several times

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buf

        def buffer_updated(self, nbytes: int) -> None:
            got.extend(self.buf[:nbytes])

    wrapper = BoundedProtocol(Buffered(), ReadBudget(1 << 20))
    wrapper.connection_made(_NullTransport())
    payload = bytes(range(256)) * 300
    wrapper.data_received(payload)
    await eventually(_holds(lambda: len(got) == len(payload)))
    assert bytes(got) == payload


async def test_connection_loss_reaches_the_client_after_the_pending_data() -> None:
    events: list[Any] = []

    class Recording(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            events.append(len(data))

        def connection_lost(self, exc: Exception | None) -> None:
            events.append("lost")

    wrapper = BoundedProtocol(Recording(), ReadBudget(1 << 20))
    wrapper.connection_made(_NullTransport())
    wrapper.data_received(b"z" * (3 * CHUNK))
    wrapper.connection_lost(None)
    assert events == [CHUNK]
    await eventually(_holds(lambda: "lost" in events))
    assert events == [CHUNK, CHUNK, CHUNK, "lost"]


class _NullTransport(asyncio.Transport):
    """Stands in for a socket transport in the hand-over tests (no socket needed there)."""

    def __init__(self) -> None:
        super().__init__()
        self.flow: list[str] = []

    def abort(self) -> None:
        pass

    def pause_reading(self) -> None:
        self.flow.append("pause")

    def resume_reading(self) -> None:
        self.flow.append("resume")


class _Target(TargetBase):
    port: int


class _State(ProbeState):
    pass


async def _read_all(target: _Target, ctx: ProbeContext[_State]) -> ProbeResult:
    reader = await _open(target.port, ctx.state.budget)
    try:
        await reader.read()
    except BudgetExceeded:
        # a client library rarely says why the connection went: the framework must
        raise ConnectionResetError("connection reset") from None
    return ProbeResult()


_RUNTIME: KindRuntime[_Target, _State] = KindRuntime(_read_all, lambda t: _State())
_KIND = ProbeKind("test", _Target, (), lambda: _RUNTIME, "port", "1", response_budget=1 << 20)


async def test_run_probe_reports_an_overrun_as_protocol_and_resets_per_run() -> None:
    async with _sender(b"q" * (3 << 20)) as port:
        target = _Target(name="t", port=port, interval=1, timeout=5)
        state = _State()
        over = await run_probe(_KIND, target, state, 5)
        assert over.reason == "protocol"
        assert "more than the response budget of 1MiB" in str(over.error)
        roomy = target.model_copy(update={"response_budget": 8 << 20})
        ok = await run_probe(_KIND, roomy, state, 5)
        assert ok.reason is None, ok.error
        assert state.budget.limit == 8 << 20 and state.budget.used == 3 << 20


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("16MiB", 16 << 20),
        ("512KiB", 512 << 10),
        ("1GiB", 1 << 30),
        (65536, 65536),
        ("70000", 70000),
    ],
)
def test_sizes_parse(text: str | int, size: int) -> None:
    assert parse_response_budget(text) == size


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("16MB", "expected a size such as 16MiB"),
        ("lots", "expected a size such as 16MiB"),
        (1.5, "expected a size such as 16MiB"),
        (True, "expected a size such as 16MiB"),
        ("1KiB", "must be between 64KiB and 1GiB"),
        ("2GiB", "must be between 64KiB and 1GiB"),
    ],
)
def test_bad_sizes_are_refused(text: Any, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        _Target(name="t", port=1, response_budget=text)


def test_format_size() -> None:
    assert [format_size(n) for n in (16 << 20, 1 << 30, 1536, 70000)] == [
        "16MiB",
        "1GiB",
        "1536B",
        "70000B",
    ]
