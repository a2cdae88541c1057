"""The Kafka simulator drives each consumer-group status the demo shows."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from stack import Tansu
from stack.sim_kafka import KafkaSimulator

from ..helpers import Running, Series, scrape_until, value, with_label

Factory = Callable[..., Any]


async def test_simulator_groups_show_ok_warn_and_stop(
    tansu_server: Tansu, exporter_factory: Factory
) -> None:
    prefix = f"sim{uuid.uuid4().hex[:6]}"
    sim = KafkaSimulator(tansu_server.bootstrap, prefix=prefix, rate=8.0, partitions=1)
    await sim.start()
    try:
        run: Running = await exporter_factory(
            f"""
kafka:
  - name: demo
    bootstrap_servers: {tansu_server.bootstrap}
    interval: 500ms
    timeout: 450ms
    status_window: 4
    groups: {{allow: ["{prefix}-.*"]}}
    topics: {{allow: ["{prefix}-.*"]}}
"""
        )
        statuses: dict[str, str] = {}

        def all_shown(m: Series) -> bool:
            for group in sim.groups:
                on = with_label(m, "tradeops_kafka_consumer_group_status", group=group)
                statuses[group] = next((dict(k)["status"] for k, v in on.items() if v == 1), "")
            return statuses == sim.groups

        m = await scrape_until(run, all_shown, timeout=60, step=0.25)
        lag = "tradeops_kafka_consumer_group_lag_offsets"
        assert value(m, lag, target="demo", group=f"{prefix}-audit")
        assert value(m, "tradeops_kafka_topic_end_offset", target="demo", topic=f"{prefix}-prices")
    finally:
        await sim.stop()
