"""Redis Cluster targets, against a real cluster of three primaries
(stack.redis_ha), with a password."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exporter.kinds.redis import KIND
from exporter.scheduler import run_probe
from stack import Redis
from stack.redis_ha import SLOTS, RedisCluster

from ... import faults
from ...helpers import Running, Series, report, scrape_until, value, with_label
from ...hostile import BEHAVIOURS, Behaviour, hostile_peer, record_fault
from .support import (
    Factory,
    lone_peer_reason,
    password_file,
    probe_state,
    redis_target,
    up,
    values,
)


def _target_yaml(name: str, seeds: list[str], pw: Path | None, extra: str = "") -> str:
    listed = ", ".join(f'"{a}"' for a in seeds)
    password = f'password_file: "{pw}"' if pw else "username: default"
    return f"""
  - name: {name}
    cluster: [{listed}]
    {password}
    interval: 500ms
    timeout: 450ms
{extra}"""


def _per_node(m: Series, family: str, name: str) -> dict[str, float]:
    found = with_label(m, f"tradeops_redis_cluster_node_{family}", target=name)
    return {dict(labels)["node"]: v for labels, v in found.items()}


async def test_the_cluster_and_each_node_are_reported(
    redis_cluster: RedisCluster,
    redis_server: Redis,
    tmp_path: Path,
    exporter_factory: Factory,
) -> None:
    c = redis_cluster
    pw = password_file(tmp_path, c.password)
    wrong = password_file(tmp_path, "not-the-password", "wrong-pw")
    run: Running = await exporter_factory(
        "redis:"
        + _target_yaml("trades", c.addresses, pw)
        + _target_yaml("capped", c.addresses[:1], pw, "    max_nodes: 2\n")
        + _target_yaml("wrong-password", c.addresses, wrong)
        + _target_yaml("standalone", [redis_server.address], None)
    )
    names = ("trades", "capped", "wrong-password", "standalone")
    m = await scrape_until(run, lambda m: all(up(m, n) is not None for n in names))
    t = {"target": "trades"}
    assert up(m, "trades") == 1
    assert value(m, "tradeops_redis_cluster_state_ok", **t) == 1
    assert value(m, "tradeops_redis_cluster_slots_assigned", **t) == SLOTS
    assert value(m, "tradeops_redis_cluster_slots_ok", **t) == SLOTS
    assert value(m, "tradeops_redis_cluster_slots_fail", **t) == 0
    assert value(m, "tradeops_redis_cluster_slot_coverage_ratio", **t) == 1
    assert value(m, "tradeops_redis_cluster_known_nodes", **t) == 3
    assert value(m, "tradeops_redis_cluster_size", **t) == 3
    assert value(m, "tradeops_redis_cluster_nodes_unreported", **t) == 0
    ids = {c.node_id(n): c.slots(n) for n in c.nodes}
    assert _per_node(m, "slots", "trades") == ids
    assert _per_node(m, "primary", "trades") == dict.fromkeys(ids, 1)
    assert _per_node(m, "replicas", "trades") == dict.fromkeys(ids, 0)
    assert _per_node(m, "link_up", "trades") == dict.fromkeys(ids, 1)
    assert _per_node(m, "fail", "trades") == dict.fromkeys(ids, 0)
    assert _per_node(m, "pfail", "trades") == dict.fromkeys(ids, 0)
    # at most max_nodes nodes have series, the first by ID; the rest is counted
    assert sorted(_per_node(m, "slots", "capped")) == sorted(ids)[:2]
    assert value(m, "tradeops_redis_cluster_nodes_unreported", target="capped") == 1
    for name, reason in (("wrong-password", "auth"), ("standalone", "config")):
        assert up(m, name) == 0
        assert value(m, "tradeops_probe_errors_total", kind="redis", target=name, reason=reason)


async def test_a_stopped_primary_shows_in_state_coverage_and_its_node(
    redis_cluster: RedisCluster,
    tmp_path: Path,
    exporter_factory: Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGSTOP a primary (the first seed, too): the others flag it failing and the
    cluster goes to fail; the exporter, asking the next seed, says so, then says
    ok again once the primary is resumed."""
    caplog.set_level(logging.INFO, logger="exporter")
    c = redis_cluster
    pw = password_file(tmp_path, c.password)
    run: Running = await exporter_factory("redis:" + _target_yaml("trades", c.addresses, pw))
    t = {"target": "trades"}
    await scrape_until(run, lambda m: value(m, "tradeops_redis_cluster_state_ok", **t) == 1)
    stopped, stopped_id, stopped_slots = c.nodes[0], c.node_id(c.nodes[0]), c.slots(c.nodes[0])
    stopped.pause()
    m = await scrape_until(
        run, lambda m: value(m, "tradeops_redis_cluster_state_ok", **t) == 0, timeout=15
    )
    assert up(m, "trades") == 1, "a hung seed is skipped, not the target's failure"
    assert value(m, "tradeops_redis_cluster_slots_fail", **t) == stopped_slots
    assert value(m, "tradeops_redis_cluster_slot_coverage_ratio", **t) == pytest.approx(
        (SLOTS - stopped_slots) / SLOTS
    )
    assert _per_node(m, "fail", "trades")[stopped_id] == 1
    # (its bus link may still read connected: a paused process keeps accepting TCP)
    assert sum(_per_node(m, "fail", "trades").values()) == 1
    duration = value(m, "tradeops_probe_duration_seconds", kind="redis", target="trades")
    assert duration is not None and duration < 0.45
    stopped.resume()
    m = await scrape_until(
        run, lambda m: value(m, "tradeops_redis_cluster_state_ok", **t) == 1, timeout=15
    )
    assert value(m, "tradeops_redis_cluster_slot_coverage_ratio", **t) == 1
    assert _per_node(m, "fail", "trades")[stopped_id] == 0
    lines = [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.getMessage().startswith("redis cluster state")
    ]
    assert lines == [
        (logging.WARNING, "redis cluster state is not ok"),
        (logging.INFO, "redis cluster state is ok"),
    ]
    errors = with_label(m, "tradeops_probe_errors_total", kind="redis", target="trades")
    assert sum(errors.values()) == 0


async def test_hostile_seeds_before_a_real_node_are_skipped(
    redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    """A flooding or silent seed costs its own budget or slice, then the next is asked."""
    pw = password_file(tmp_path, redis_cluster.password)
    async with (
        hostile_peer("huge", reply=b"$2000000000\r\n") as huge,
        hostile_peer("silent") as silent,
    ):
        seeds = [huge.address, silent.address, redis_cluster.addresses[1]]
        target = redis_target(name="trades", cluster=seeds, password_file=str(pw), timeout=0.9)
        async with probe_state(target) as state:
            outcome = await run_probe(KIND, target, state, target.timeout_s)
            assert outcome.ok, outcome.error
            assert state.seed_budgets[0].exceeded and not state.budget.exceeded
            assert values(outcome)["tradeops_redis_cluster_state_ok"] == 1
            # the seed that answered is asked first from now on: the next run is quick
            again = await run_probe(KIND, target, state, target.timeout_s)
            assert again.ok and again.duration < 0.2


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
async def test_a_hostile_peer_as_the_only_seed_is_a_stable_reason(
    behaviour: Behaviour, tmp_path: Path
) -> None:
    reason = await lone_peer_reason(behaviour, "cluster", password_file(tmp_path, "hostile-pw"))
    record_fault("cluster", behaviour, reason or "ok")
    assert reason == faults.STANDARD_REASONS[behaviour]


async def test_a_thousand_failed_runs_hold_no_resources(tmp_path: Path) -> None:
    """fds, tasks, threads and RSS at a plateau over ~1000 fast runs whose seeds hang
    up or answer garbage, always the same reason."""
    async with hostile_peer("close") as close, hostile_peer("garbage") as garbage:
        pw = password_file(tmp_path, "hostile-pw")
        target = redis_target(cluster=[close.address, garbage.address], password_file=str(pw))
        flat = await faults.fresh_plateau(KIND, target, warmup=50)
    report(f"redis cluster against a closing and a garbling seed: {flat}")
    assert flat.same_reason() == "protocol"
    flat.assert_flat()
