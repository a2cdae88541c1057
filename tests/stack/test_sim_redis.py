"""The demo's Redis traffic stops when asked, even when a command swallows the
cancellation (as redis-py can when it lands inside a command)."""

from __future__ import annotations

import asyncio
from typing import Any

from stack import Redis
from stack.sim_redis import RedisTraffic


async def test_stop_ends_the_traffic_when_a_command_swallows_the_cancel(
    redis_server: Redis,
) -> None:
    traffic = RedisTraffic(redis_server.address)
    real_set = traffic.client.set
    swallowed: list[str] = []
    inside = asyncio.Event()

    async def set_swallowing_once(*args: Any, **kwargs: Any) -> Any:
        if swallowed:
            return await real_set(*args, **kwargs)
        inside.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            swallowed.append(str(args[0]))  # returns as if the command had completed
        return await real_set(*args, **kwargs)

    traffic.client.set = set_swallowing_once  # type: ignore[method-assign]
    traffic.start()
    await asyncio.wait_for(inside.wait(), 10)
    stop = asyncio.create_task(traffic.stop())
    await asyncio.wait({stop}, timeout=5)  # no wait_for: its cancel would end the task
    assert stop.done() and swallowed
    assert traffic._task is not None and traffic._task.done()
