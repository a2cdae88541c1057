"""Kafka probe against a real Kafka-protocol broker (Tansu from the stack).

Each test uses its own topic and group names and a group/topic allow-list, so
tests sharing the session's broker do not see each other's groups.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from exporter import config as cfg
from stack import Tansu, free_port

from ...fixtures_kafka import (
    commit,
    create_topic,
    delete_group,
    describe_cluster,
    log_offsets,
    member,
    produce,
)
from ...helpers import Running, Series, eventually, parse, scrape_until, value, with_label

Factory = Callable[..., Any]


def _prefix() -> str:
    return f"k{uuid.uuid4().hex[:8]}"


def _config(
    bootstrap: str,
    prefix: str,
    extra: str = "",
    interval: str = "500ms",
    timeout: str = "450ms",
    window: int = 3,
) -> str:
    return f"""
kafka:
  - name: main
    bootstrap_servers: {bootstrap}
    interval: {interval}
    timeout: {timeout}
    status_window: {window}
    groups: {{allow: ["{prefix}-.*"]}}
    topics: {{allow: ["{prefix}-.*"]}}
{extra}
"""


FW = {"kind": "kafka", "target": "main"}


def _ok_runs(m: Series) -> float:
    """Successful runs: each one adds a point to the status and lag windows."""
    runs = value(m, "tradeops_probe_runs_total", **FW) or 0
    return runs - sum(with_label(m, "tradeops_probe_errors_total", **FW).values())


async def _runs_at_least(run: Running, n: int) -> Series:
    """The scrape that shows ``n`` successful runs, the last one included (so the data
    series are there): a run failed under load does not count, and a later scrape
    could show a later, failed run."""
    return await scrape_until(
        run, lambda m: _ok_runs(m) >= n and value(m, "tradeops_up", **FW) == 1, timeout=20
    )


def _status(m: Series, group: str) -> str | None:
    on = [
        dict(lbl)["status"]
        for lbl, v in with_label(m, "tradeops_kafka_consumer_group_status", group=group).items()
        if v == 1
    ]
    return on[0] if on else None


async def _wait_status(run: Running, group: str, status: str, timeout: float = 20) -> Series:
    """The scrape that shows the status (a transient one, rewind, may be gone by the next)."""
    return await scrape_until(run, lambda m: _status(m, group) == status, timeout, step=0.1)


async def test_offset_lag_per_partition_and_no_series_without_commit(
    tansu_server: Tansu, exporter_factory: Factory
) -> None:
    bs, px = tansu_server.bootstrap, _prefix()
    topic, group, idle = f"{px}-orders", f"{px}-risk", f"{px}-idle"
    await create_topic(bs, topic, 3)
    await produce(bs, topic, {0: 5, 1: 3})
    await commit(bs, group, {(topic, 0): 2, (topic, 1): 3})
    other = f"{px}-other"
    await create_topic(bs, other, 1)
    async with member(bs, idle, topic, other) as consumer:
        # Tansu lists a group only once it has committed something: commit on
        # another topic so that the idle group is listed without commits on `topic`.
        await consumer.commit({TopicPartition(other, 0): 0})
        run: Running = await exporter_factory(_config(bs, px))
        m = await _runs_at_least(run, 3)
    t = {"target": "main"}
    g = {**t, "group": group, "topic": topic}
    assert value(m, "tradeops_up", kind="kafka", target="main") == 1
    assert value(m, "tradeops_kafka_consumer_lag_offsets", **g, partition="0") == 3
    assert value(m, "tradeops_kafka_consumer_lag_offsets", **g, partition="1") == 0
    assert value(m, "tradeops_kafka_consumer_committed_offset", **g, partition="0") == 2
    # partition 2 was never committed: no lag, not 0 and not -1
    assert value(m, "tradeops_kafka_consumer_lag_offsets", **g, partition="2") is None
    assert value(m, "tradeops_kafka_consumer_topic_lag_offsets", **g) == 3
    assert value(m, "tradeops_kafka_consumer_group_lag_offsets", **t, group=group) == 3
    assert value(m, "tradeops_kafka_partition_end_offset", **t, topic=topic, partition="0") == 5
    assert value(m, "tradeops_kafka_partition_end_offset", **t, topic=topic, partition="2") == 0
    assert value(m, "tradeops_kafka_topic_end_offset", **t, topic=topic) == 8
    assert value(m, "tradeops_kafka_topic_partitions", **t, topic=topic) == 3
    # log starts and retained messages, against what a plain consumer is told
    starts, ends = await log_offsets(bs, topic, 3)
    assert ends == {0: 5, 1: 3, 2: 0}
    for p, start in starts.items():
        got = value(m, "tradeops_kafka_partition_start_offset", **t, topic=topic, partition=str(p))
        assert got == start, p
    retained = sum(ends[p] - starts[p] for p in ends)
    assert value(m, "tradeops_kafka_topic_retained_messages", **t, topic=topic) == retained
    # brokers and controller, against aiokafka's admin client
    cluster = await describe_cluster(bs)
    brokers = {
        frozenset(
            {
                "target": "main",
                "broker_id": str(b["node_id"]),
                "address": f"{b['host']}:{b['port']}",
                "rack": b["rack"] or "",
            }.items()
        ): 1.0
        for b in cluster["brokers"]
    }
    assert with_label(m, "tradeops_kafka_broker_info") == brokers
    assert value(m, "tradeops_kafka_controller_id", **t) == cluster["controller_id"]
    # a healthy broker answers every OffsetFetch without an error
    assert value(m, "tradeops_kafka_offset_fetch_errors", **t) == 0
    # the idle group has a member but no commits on the topic: state and members, no lag
    assert with_label(m, "tradeops_kafka_consumer_lag_offsets", group=idle, topic=topic) == {}
    assert with_label(m, "tradeops_kafka_consumer_topic_lag_offsets", group=idle, topic=topic) == {}
    assert value(m, "tradeops_kafka_consumer_group_members", **t, group=idle) == 1
    assert value(m, "tradeops_kafka_consumer_group_state", **t, group=idle, state="stable") == 1
    # (Tansu answers DescribeGroups for a group that never had members with an
    # error, so the committed-only group's state is "unknown" there: not asserted.)
    assert value(m, "tradeops_kafka_consumer_groups", **t) == 2
    assert value(m, "tradeops_kafka_topics", **t) == 2
    assert value(m, "tradeops_kafka_brokers", **t) == 1
    assert value(m, "tradeops_kafka_partitions_offline", **t) == 0
    # Metadata + ListGroups + DescribeGroups + 2 OffsetFetch + 2 ListOffsets: one
    # broker, two groups, whatever the partition count
    assert value(m, "tradeops_kafka_requests_per_cycle", **t) == 7
    # partition 0 sat behind for the whole window with nobody in the group
    parts = "tradeops_kafka_consumer_group_partitions"
    assert _status(m, group) == "stop"
    assert value(m, parts, **t, group=group, status="stop") == 1
    assert value(m, parts, **t, group=group, status="ok") == 1


async def test_stopped_consumer_stops_time_lag_grows_and_catch_up_is_ok(
    tansu_server: Tansu, exporter_factory: Factory
) -> None:
    bs, px = tansu_server.bootstrap, _prefix()
    topic, group = f"{px}-prices", f"{px}-pricer"
    await create_topic(bs, topic, 1)
    await produce(bs, topic, {0: 10})
    await commit(bs, group, {(topic, 0): 4})
    run: Running = await exporter_factory(_config(bs, px))
    g = {"target": "main", "group": group}
    m = await _wait_status(run, group, "stop")
    assert value(m, "tradeops_kafka_consumer_lag_offsets", **g, topic=topic, partition="0") == 6
    assert value(m, "tradeops_kafka_consumer_topic_draining", **g, topic=topic) == 0
    assert value(m, "tradeops_kafka_consumer_topic_drain_seconds", **g, topic=topic) is None
    first = value(m, "tradeops_kafka_consumer_group_max_lag_seconds", **g)
    assert first is not None
    # the messages predate the exporter's first sample: the value is a floor
    assert value(m, "tradeops_kafka_consumer_topic_lag_seconds_lower_bound", **g, topic=topic) == 1
    later = await _runs_at_least(run, int(_ok_runs(m)) + 4)
    second = value(later, "tradeops_kafka_consumer_group_max_lag_seconds", **g)
    assert second is not None and second > first + 0.5
    advanced = value(later, "tradeops_kafka_consumer_group_offset_advanced_timestamp_seconds", **g)
    assert advanced is not None and advanced < time.time() - 0.5

    await commit(bs, group, {(topic, 0): 10})
    m = await _wait_status(run, group, "ok")
    assert value(m, "tradeops_kafka_consumer_lag_offsets", **g, topic=topic, partition="0") == 0
    assert value(m, "tradeops_kafka_consumer_lag_seconds", **g, topic=topic, partition="0") == 0
    assert value(m, "tradeops_kafka_consumer_topic_drain_seconds", **g, topic=topic) == 0
    assert value(m, "tradeops_kafka_consumer_topic_max_lag_seconds", **g, topic=topic) == 0


async def test_member_present_but_stuck_is_stall_and_rewind_is_seen(
    tansu_server: Tansu, exporter_factory: Factory
) -> None:
    bs, px = tansu_server.bootstrap, _prefix()
    topic, stuck, rewound = f"{px}-risk", f"{px}-stuck", f"{px}-rewound"
    await create_topic(bs, topic, 1)
    await produce(bs, topic, {0: 6})
    await commit(bs, rewound, {(topic, 0): 5})
    async with member(bs, stuck, topic) as consumer:
        await consumer.commit({TopicPartition(topic, 0): 1})
        run: Running = await exporter_factory(_config(bs, px))
        await _runs_at_least(run, 2)
        await commit(bs, rewound, {(topic, 0): 2})
        m = await _wait_status(run, rewound, "rewind")
        assert (
            value(
                m,
                "tradeops_kafka_consumer_group_partitions",
                target="main",
                group=rewound,
                status="rewind",
            )
            == 1
        )
        m = await _wait_status(run, stuck, "stall")
        assert value(m, "tradeops_kafka_consumer_group_members", target="main", group=stuck) == 1


async def test_deleted_group_and_denied_topic_have_no_series(
    tansu_server: Tansu, exporter_factory: Factory
) -> None:
    bs, px = tansu_server.bootstrap, _prefix()
    topic, hidden, group = f"{px}-fills", f"{px}-audit", f"{px}-booker"
    for t in (topic, hidden):
        await create_topic(bs, t, 1)
        await produce(bs, t, {0: 2})
    await commit(bs, group, {(topic, 0): 1, (hidden, 0): 0})
    extra = f'    topics: {{allow: ["{px}-.*"], deny: [".*-audit"]}}\n'
    run: Running = await exporter_factory(
        _config(bs, px).replace(f'    topics: {{allow: ["{px}-.*"]}}\n', extra)
    )
    m = await _runs_at_least(run, 2)
    assert value(m, "tradeops_kafka_consumer_group_lag_offsets", target="main", group=group) == 1
    assert with_label(m, "tradeops_kafka_consumer_lag_offsets", topic=hidden) == {}
    assert with_label(m, "tradeops_kafka_topic_end_offset", topic=hidden) == {}
    await delete_group(bs, group)

    def gone(m: Series) -> bool:  # from a successful run: a failed one withdraws it too
        state = with_label(m, "tradeops_kafka_consumer_group_state", group=group)
        return state == {} and value(m, "tradeops_up", **FW) == 1

    m = await scrape_until(run, gone, timeout=10)
    assert with_label(m, "tradeops_kafka_consumer_lag_offsets", group=group) == {}
    assert with_label(m, "tradeops_kafka_consumer_group_status", group=group) == {}
    assert value(m, "tradeops_kafka_consumer_groups", target="main") == 0


async def test_topic_granularity_has_no_partition_series(
    tansu_server: Tansu, exporter_factory: Factory
) -> None:
    bs, px = tansu_server.bootstrap, _prefix()
    topic, group = f"{px}-quotes", f"{px}-mm"
    await create_topic(bs, topic, 2)
    await produce(bs, topic, {0: 4, 1: 4})
    await commit(bs, group, {(topic, 0): 1, (topic, 1): 2})
    run: Running = await exporter_factory(_config(bs, px, "    granularity: topic\n"))
    m = await _runs_at_least(run, 2)
    for name in (
        "tradeops_kafka_consumer_lag_offsets",
        "tradeops_kafka_consumer_committed_offset",
        "tradeops_kafka_consumer_lag_seconds",
        "tradeops_kafka_partition_end_offset",
    ):
        assert with_label(m, name) == {}, name
    g = {"target": "main", "group": group, "topic": topic}
    assert value(m, "tradeops_kafka_consumer_topic_lag_offsets", **g) == 5
    assert value(m, "tradeops_kafka_topic_end_offset", target="main", topic=topic) == 8


async def test_lag_objectives_first_match_wins_with_the_resolved_calendar(
    tansu_server: Tansu, exporter_factory: Factory
) -> None:
    bs, px = tansu_server.bootstrap, _prefix()
    topic = f"{px}-orders"
    await create_topic(bs, topic, 1)
    await produce(bs, topic, {0: 2})
    groups = [f"{px}-risk-a", f"{px}-risk-b", f"{px}-pricing", f"{px}-other"]
    for group in groups:
        await commit(bs, group, {(topic, 0): 1})
    calendars = """
calendars:
  - {name: xlon, exchange: XLON}
  - {name: xnys, exchange: XNYS}
"""
    objectives = f"""    calendar: xlon
    default_lag_objective: 45s
    lag_objectives:
      - {{groups: "{px}-risk", objective: 1s}}
      - {{groups: "{px}-risk-a", objective: 10s, calendar: xnys}}
      - {{groups: "{px}-risk-.*", objective: 30s}}
      - {{groups: "{px}-risk-a|{px}-pricing", objective: 2m, calendar: always}}
"""
    run: Running = await exporter_factory(calendars + _config(bs, px, objectives))
    m = await _runs_at_least(run, 1)
    got = {
        (dict(lbl)["group"], dict(lbl)["calendar"]): v
        for lbl, v in with_label(
            m, "tradeops_kafka_consumer_group_lag_objective_seconds", target="main"
        ).items()
    }
    assert got == {
        (f"{px}-risk-a", "xnys"): 10,  # the first match, not the later ones
        (f"{px}-risk-b", "xlon"): 30,  # the target's calendar
        (f"{px}-pricing", "always"): 120,
        (f"{px}-other", "xlon"): 45,  # no match: the default
    }
    # one objective per group the probe reports
    assert {dict(lbl)["group"] for lbl in with_label(m, "tradeops_kafka_consumer_group_state")} == {
        g for g, _ in got
    }


async def test_lag_objective_defaults_to_60s_under_always(
    tansu_server: Tansu, exporter_factory: Factory
) -> None:
    bs, px = tansu_server.bootstrap, _prefix()
    topic, group = f"{px}-orders", f"{px}-risk"
    await create_topic(bs, topic, 1)
    await produce(bs, topic, {0: 1})
    await commit(bs, group, {(topic, 0): 1})
    run: Running = await exporter_factory(_config(bs, px))
    m = await _runs_at_least(run, 1)
    assert with_label(m, "tradeops_kafka_consumer_group_lag_objective_seconds") == {
        frozenset({("target", "main"), ("group", group), ("calendar", "always")}): 60
    }


async def test_broker_hang_and_kill_withdraw_series_and_recover(
    tmp_path: Path, exporter_factory: Factory
) -> None:
    broker = Tansu(tmp_path / "broker").start()
    try:
        await _outage_scenario(broker, exporter_factory)
    finally:
        broker.resume()
        broker.stop()


async def _outage_scenario(broker: Tansu, exporter_factory: Factory) -> None:
    bs, px = broker.bootstrap, _prefix()
    topic, group = f"{px}-md", f"{px}-feed"

    async def seed() -> None:
        await create_topic(bs, topic, 1)
        await produce(bs, topic, {0: 3})
        await commit(bs, group, {(topic, 0): 1})

    await seed()
    run: Running = await exporter_factory(_config(bs, px, interval="500ms", timeout="400ms"))
    fw = {"kind": "kafka", "target": "main"}
    lag = "tradeops_kafka_consumer_lag_offsets"

    async def lag_is(v: float | None) -> bool:
        m = await run.scrape()
        return value(m, lag, target="main", group=group, topic=topic, partition="0") == v

    await eventually(lambda: lag_is(2), timeout=10)
    broker.pause()
    try:

        async def timed_out() -> bool:
            m = await run.scrape()
            return (value(m, "tradeops_probe_errors_total", **fw, reason="timeout") or 0) >= 1

        await eventually(timed_out, timeout=10)
        m = await run.scrape()
        assert value(m, "tradeops_up", **fw) == 0
        assert with_label(m, lag) == {}
        worst = 0.0
        for _ in range(10):
            start = time.perf_counter()
            await run.scrape()
            worst = max(worst, time.perf_counter() - start)
        assert worst < 0.1, f"/metrics took {worst:.3f}s while the broker hangs"
    finally:
        broker.resume()
    await eventually(lambda: lag_is(2), timeout=10)
    broker.kill()

    async def refused() -> bool:
        m = await run.scrape()
        return (value(m, "tradeops_probe_errors_total", **fw, reason="refused") or 0) >= 1

    await eventually(refused, timeout=10)
    m = await run.scrape()
    assert value(m, "tradeops_up", **fw) == 0
    assert with_label(m, lag) == {}
    assert with_label(m, "tradeops_kafka_brokers") == {}
    broker.start()
    await seed()  # memory storage: the restarted broker starts empty
    m = await scrape_until(
        run,
        lambda m: value(m, lag, target="main", group=group, topic=topic, partition="0") == 2,
        timeout=15,
    )
    assert value(m, "tradeops_up", **fw) == 1


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        (
            "    bootstrap_servers: nowhere\n",
            "cfg.yml: kafka[0].bootstrap_servers: expected host:port "
            "(the value is not echoed: it may hold credentials)",
        ),
        (
            "    bootstrap_servers: 127.0.0.1:9092\n    groups: {deny: ['(']}\n",
            "cfg.yml: kafka[0].groups.deny[0]: bad regular expression '(': "
            "missing ), unterminated subpattern at position 0",
        ),
        (
            "    bootstrap_servers: 127.0.0.1:9092\n    sasl: {username: u}\n",
            "cfg.yml: kafka[0].sasl: SASL needs password (${ENV_VAR}) or password_file",
        ),
        (
            "    bootstrap_servers: 127.0.0.1:9092\n    granularity: group\n",
            "cfg.yml: kafka[0].granularity: Input should be 'partition' or 'topic'",
        ),
        (
            "    bootstrap_servers: 127.0.0.1:9092\n    status_window: 1\n",
            "cfg.yml: kafka[0].status_window: Input should be greater than or equal to 2",
        ),
    ],
)
def test_config_errors(snippet: str, message: str) -> None:
    with pytest.raises(cfg.ConfigError) as info:
        cfg.parse("kafka:\n  - name: main\n" + snippet, "cfg.yml")
    assert info.value.lines() == [message]


async def test_garbage_and_closed_port_are_reported_not_raised(
    exporter_factory: Factory,
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"\x00\x00\x00\x08HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    garbage_port = server.sockets[0].getsockname()[1]
    closed_port = free_port()
    try:
        run: Running = await exporter_factory(
            f"""
kafka:
  - name: junk
    bootstrap_servers: 127.0.0.1:{garbage_port}
    interval: 500ms
    timeout: 400ms
  - name: closed
    bootstrap_servers: 127.0.0.1:{closed_port}
    interval: 500ms
    timeout: 400ms
"""
        )

        def errors(m: Series, target: str) -> dict[str, float]:
            got = with_label(m, "tradeops_probe_errors_total", kind="kafka", target=target)
            return {dict(k)["reason"]: v for k, v in got.items() if v}

        async def both_failed() -> bool:
            m = await run.scrape()
            return bool(errors(m, "junk")) and bool(errors(m, "closed"))

        await eventually(both_failed, timeout=10)
        m = await run.scrape()
        assert set(errors(m, "closed")) == {"refused"}
        assert set(errors(m, "junk")) == {"protocol"}
        assert value(m, "tradeops_up", kind="kafka", target="junk") == 0
        assert with_label(m, "tradeops_kafka_brokers") == {}
    finally:
        server.close()
        await server.wait_closed()


async def test_time_lag_is_interpolated_between_log_end_samples(
    tansu_server: Tansu, exporter_factory: Factory
) -> None:
    bs, px = tansu_server.bootstrap, _prefix()
    topic, group = f"{px}-trades", f"{px}-settle"
    await create_topic(bs, topic, 1)
    await produce(bs, topic, {0: 2})
    await commit(bs, group, {(topic, 0): 2})
    run: Running = await exporter_factory(_config(bs, px, window=10))
    m = await _runs_at_least(run, 2)
    runs = int(_ok_runs(m))
    produced = time.time()
    await produce(bs, topic, {0: 3})
    done = time.time()  # the producer's start-up and three sends: slow under load
    m = await _runs_at_least(run, runs + 6)  # about 3 s after the produce
    g = {"target": "main", "group": group, "topic": topic}
    probed = value(m, "tradeops_probe_last_run_timestamp_seconds", kind="kafka", target="main")
    assert probed is not None
    lag = value(m, "tradeops_kafka_consumer_lag_seconds", **g, partition="0")
    # the first unconsumed message was produced between `produced` and `done`, and its
    # estimate lies between the samples around that moment
    assert lag is not None and probed - done - 1.2 < lag < probed - produced + 1.2
    # one partition: the topic's worst time lag is that estimate, within the same bounds
    topic_lag = value(m, "tradeops_kafka_consumer_topic_max_lag_seconds", **g)
    assert topic_lag is not None and probed - done - 1.2 < topic_lag < probed - produced + 1.2
    assert value(m, "tradeops_kafka_consumer_topic_lag_seconds_lower_bound", **g) == 0
    assert value(m, "tradeops_kafka_consumer_lag_offsets", **g, partition="0") == 3
    assert _status(m, group) == "ok"  # the lag was zero earlier in the window


async def test_on_demand_probe_module(tansu_server: Tansu, exporter_factory: Factory) -> None:
    bs, px = tansu_server.bootstrap, _prefix()
    topic, group = f"{px}-fx", f"{px}-hedger"
    await create_topic(bs, topic, 1)
    await produce(bs, topic, {0: 4})
    await commit(bs, group, {(topic, 0): 1})
    run: Running = await exporter_factory(
        f"""
modules:
  kafka_lag:
    kind: kafka
    allowed_targets: ["127\\\\.0\\\\.0\\\\.1:[0-9]+"]
    timeout: 5s
    params:
      groups: {{allow: ["{px}-.*"]}}
      granularity: topic
"""
    )
    status, text, _ = await run.get(f"/probe?module=kafka_lag&target={bs}")
    assert status == 200
    m = parse(text)
    assert value(m, "tradeops_probe_success", kind="kafka", target=bs) == 1
    lag = "tradeops_kafka_consumer_topic_lag_offsets"
    assert value(m, lag, target=bs, group=group, topic=topic) == 3
    assert with_label(m, "tradeops_kafka_consumer_lag_offsets") == {}
    status, _, _ = await run.get("/probe?module=kafka_lag&target=10.0.0.1:9092")
    assert status == 403
