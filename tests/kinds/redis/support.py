"""What the Redis suites share: target configs, hostile Redis peers, a probe state
that is closed afterwards, and short reads of a scrape."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import redis

from exporter.kinds.redis import KIND
from exporter.kinds.redis.config import RedisTarget
from exporter.kinds.redis.probe import RedisState
from exporter.probe import Sample
from exporter.scheduler import RunOutcome
from stack import Redis

from ... import faults
from ...helpers import Running, Series, eventually, scrape_until, value
from ...hostile import Behaviour, HostilePeer, hostile_peer

Factory = Callable[..., Any]
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
REPLIES: dict[Behaviour, bytes] = {"huge": b"$2000000000\r\n", "auth": WRONGPASS}
"""What a Redis peer answers to ``huge`` (a 2 GB bulk string) and ``auth``."""


def server_yaml(
    server: Redis, extra: str = "", interval: str = "1s", timeout: str = "500ms"
) -> str:
    """A config with one target, ``cache``, probing ``server``; ``extra``: more fields."""
    return f"""
redis:
  - name: cache
    address: {server.address}
    interval: {interval}
    timeout: {timeout}
{extra}
"""


def up(m: Series, target: str = "cache") -> float | None:
    """The target's ``tradeops_up``."""
    return value(m, "tradeops_up", kind="redis", target=target)


def reasons(m: Series, target: str = "cache") -> set[str]:
    """The reasons the target's runs failed with so far."""
    return set(faults.errors_of(m, "redis", target))


def admin_client(server: Redis) -> redis.Redis:
    """A plain client for the test's own set-up commands (the default user)."""
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)


def password_file(tmp_path: Path, password: str | None, name: str = "redis-pw") -> Path:
    """A password file in ``tmp_path`` (empty for None)."""
    path = tmp_path / name
    path.write_text(password or "")
    return path


async def later_run(run: Running) -> Series:
    """The scrape of a successful run of ``cache`` that started after this call: the
    scrape shows the newest finished run, and run N+2 starts only once N+1 (begun
    after the call at the latest) has finished."""
    seen = await run.runs()

    def later(m: Series) -> bool:
        return faults.runs_of(m, "redis", "cache") >= seen + 2 and up(m) == 1

    return await scrape_until(run, later)


async def until_info(client: redis.Redis, check: Callable[[dict[str, Any]], bool]) -> None:
    """Wait until the server's ``INFO`` satisfies ``check``."""

    async def holds() -> bool:
        return check(client.info())

    await eventually(holds)


def redis_target(**fields: Any) -> RedisTarget:
    """A target named ``hostile``, interval 1 s, timeout 500 ms, unless ``fields`` say."""
    return RedisTarget.model_validate({"name": "hostile", "interval": 1.0, "timeout": 0.5} | fields)


@contextlib.asynccontextmanager
async def probe_state(target: RedisTarget) -> AsyncIterator[RedisState]:
    """A new state for ``target``, closed afterwards."""
    state = RedisState(target)
    try:
        yield state
    finally:
        await state.aclose()


def values(outcome: RunOutcome) -> dict[str, float]:
    """A run's plain samples by family name (for families of one series)."""
    return {s.family.name: s.value for s in outcome.samples if isinstance(s, Sample)}


@contextlib.asynccontextmanager
async def redis_peer(behaviour: Behaviour) -> AsyncIterator[HostilePeer]:
    """A hostile peer speaking as much Redis as ``behaviour`` needs."""
    async with hostile_peer(behaviour, reply=REPLIES.get(behaviour, b"")) as peer:
        yield peer


async def lone_peer_reason(
    behaviour: Behaviour, listed_in: str, password: Path, **extra: Any
) -> str | None:
    """The one reason three runs give when the target's only Sentinel or cluster seed
    (``listed_in``: the field listing them) is a hostile peer."""
    async with redis_peer(behaviour) as peer:
        listed = {listed_in: [peer.address], "password_file": str(password)}
        target = redis_target(timeout=0.3, **listed, **extra)
        outcomes, _ = await faults.fresh_runs(KIND, target, 3)
    return faults.same_reason(outcomes)
