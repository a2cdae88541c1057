"""Redis connections: error reasons by type and cause, TLS, the read budget every
connection charges, and the reader that gives the event loop its turns."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import redis

from exporter.budget import ReadBudget
from exporter.kinds.redis.client import (
    LINES_PER_TURN,
    ReplyReader,
    bounded_client,
    classify,
    tls_kwargs,
)
from exporter.model import TLSConfig
from stack import Redis

from ... import faults
from ...helpers import Running, scrape_until, self_signed_cert, value
from .support import Factory, reasons, up


def _wrapped(outer: Exception, cause: BaseException) -> Exception:
    """``outer`` raised while handling ``cause``, as redis-py wraps socket errors."""
    try:
        try:
            raise cause
        except BaseException:
            raise outer  # noqa: B904 -- redis-py raises without "from"
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        # the address is in redis-py's messages: a host's name decides nothing
        (
            _wrapped(
                redis.exceptions.ConnectionError(
                    "Error while reading from cache-timeout.internal:6379 :"
                    " (104, 'Connection reset by peer')"
                ),
                ConnectionResetError(104, "Connection reset by peer"),
            ),
            "protocol",
        ),
        (
            _wrapped(
                redis.exceptions.ConnectionError(
                    "Error 113 connecting to refused-cache.internal:6379. No route to host."
                ),
                OSError(113, "No route to host"),
            ),
            "refused",
        ),
        (
            _wrapped(
                redis.exceptions.ConnectionError("Connection closed by server."),
                asyncio.IncompleteReadError(b"", 2),
            ),
            "protocol",
        ),
        (
            _wrapped(
                redis.exceptions.ConnectionError(
                    "Error -2 connecting to nowhere.invalid:6379. Name or service not known."
                ),
                socket.gaierror(-2, "Name or service not known"),
            ),
            "other",
        ),
    ],
)
def test_classify_goes_by_type_and_cause_not_by_message(exc: Exception, reason: str) -> None:
    assert classify(exc) == reason


async def test_tls_connection_and_its_failures(tmp_path: Path, exporter_factory: Factory) -> None:
    cert, key = self_signed_cert(tmp_path)
    other_ca, _ = self_signed_cert(tmp_path / "other")
    server = Redis(tmp_path, tls=(cert, key)).start()
    try:
        run: Running = await exporter_factory(f"""
redis:
  - {{name: tls, address: "{server.address}", interval: 1s, timeout: 500ms,
      tls: {{ca_file: {cert}}}}}
  - {{name: plain, address: "{server.address}", interval: 1s, timeout: 500ms}}
  - {{name: wrong-ca, address: "{server.address}", interval: 1s, timeout: 500ms,
      tls: {{ca_file: {other_ca}}}}}
""")

        await scrape_until(run, faults.each_ran("redis", ("tls", "plain", "wrong-ca"), 2), 8)
        m = await run.scrape()
        assert up(m, "tls") == 1
        assert value(m, "tradeops_redis_role_primary", target="tls") == 1
        for target in ("plain", "wrong-ca"):
            assert up(m, target) == 0
        assert reasons(m, "wrong-ca") == {"protocol"}
    finally:
        server.stop()


def test_tls_arguments_are_redis_pys_files_and_flags(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("(read by the TLS layer, not here)")
    strict = tls_kwargs(TLSConfig(ca_file=ca))
    assert strict == {
        "ssl": True,
        "ssl_ca_certs": str(ca),
        "ssl_certfile": None,
        "ssl_keyfile": None,
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
    }
    loose = tls_kwargs(TLSConfig(insecure_skip_verify=True))
    assert (loose["ssl_cert_reqs"], loose["ssl_check_hostname"]) == ("none", False)
    assert tls_kwargs(None) == {}


async def test_every_connection_charges_the_budget_it_is_given(redis_server: Redis) -> None:
    """The budget is asked for when a socket opens (a state's is replaced before its
    first run); a reply past it aborts the connection."""
    budgets = [ReadBudget(1 << 20)]
    client = bounded_client(lambda: budgets[-1], redis_server.address)
    try:
        assert await client.ping()
        assert 0 < budgets[0].used < 1000
        await client.connection_pool.disconnect()
        budgets.append(ReadBudget(100))  # less than INFO's reply
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.info()
        assert budgets[1].exceeded and not budgets[0].exceeded
    finally:
        await client.aclose()


async def test_the_reply_reader_gives_the_loop_a_turn_every_so_many_lines() -> None:
    """Lines already buffered are read without awaiting anything: without the turns, a
    reply of millions of tiny elements would hold the loop until it is parsed."""
    reader = ReplyReader()
    reader.feed_data(b":1\r\n" * (4 * LINES_PER_TURN))
    reader.feed_eof()
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)  # the counter starts and waits for its next turn
    for _ in range(4 * LINES_PER_TURN):
        assert await reader.readline() == b":1\r\n"
    counter.cancel()
    assert turns == 4
