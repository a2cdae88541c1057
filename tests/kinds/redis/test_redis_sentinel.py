"""Redis targets behind Sentinel, against a real Sentinel group: a primary, its
replica and three Sentinels (stack.redis_ha), all with a password."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from exporter.kinds.redis import KIND
from exporter.kinds.redis.config import RedisTarget
from exporter.scheduler import run_probe
from stack import free_port
from stack.redis_ha import SentinelGroup

from ... import faults
from ...helpers import Running, Series, report, scrape_until, value
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


def _target_yaml(
    name: str,
    sentinels: list[str],
    pw: Path,
    master: str = "mymaster",
    extra: str = "",
    timeout: str = "500ms",
) -> str:
    listed = ", ".join(f'"{a}"' for a in sentinels)
    return f"""
  - name: {name}
    sentinels: [{listed}]
    master: {master}
    password_file: "{pw}"
    interval: 600ms
    timeout: {timeout}
{extra}"""


def _t(name: str) -> dict[str, str]:
    return {"target": name}


def _changes(m: Series, name: str) -> float | None:
    return value(m, "tradeops_redis_sentinel_master_changes_total", target=name)


def _errors(m: Series, name: str, reason: str) -> float | None:
    return value(m, "tradeops_probe_errors_total", kind="redis", target=name, reason=reason)


def _records(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


async def test_the_master_and_the_sentinels_view_are_reported(
    sentinel_group: SentinelGroup, tmp_path: Path, exporter_factory: Factory
) -> None:
    pw = password_file(tmp_path, sentinel_group.password)
    run: Running = await exporter_factory(
        "redis:" + _target_yaml("orders", sentinel_group.addresses, pw, extra="    canary: {}\n")
    )
    m = await scrape_until(run, lambda m: up(m, "orders") is not None)
    t = _t("orders")
    assert up(m, "orders") == 1
    assert value(m, "tradeops_redis_sentinel_sentinels", **t) == 3
    assert value(m, "tradeops_redis_sentinel_sentinels_reachable", **t) == 3
    assert value(m, "tradeops_redis_sentinel_sentinels_master_up", **t) == 3
    assert value(m, "tradeops_redis_sentinel_quorum", **t) == 2
    assert value(m, "tradeops_redis_sentinel_quorum_ok", **t) == 1
    assert value(m, "tradeops_redis_sentinel_failover_in_progress", **t) == 0
    assert _changes(m, "orders") == 0
    assert value(m, "tradeops_redis_sentinel_master_last_change_timestamp_seconds", **t) is None
    # the master itself, probed as a single server is
    assert value(m, "tradeops_redis_role_primary", **t) == 1
    assert value(m, "tradeops_redis_connected_replicas", **t) == 1
    assert value(m, "tradeops_redis_canary_success", **t) == 1
    assert 0 < value(m, "tradeops_redis_ping_seconds", **t) < 0.5  # type: ignore[operator]


async def test_a_failover_is_followed_and_said(
    sentinel_group: SentinelGroup,
    tmp_path: Path,
    exporter_factory: Factory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGSTOP the primary: while it hangs the runs fail with timeout and the
    Sentinels' view stays served; once Sentinel has promoted the replica the
    exporter probes it, counts the failover and logs the move once."""
    caplog.set_level(logging.INFO, logger="exporter")
    g = sentinel_group
    pw = password_file(tmp_path, g.password)
    run: Running = await exporter_factory(
        "redis:" + _target_yaml("orders", g.addresses, pw, extra="    canary: {}\n")
    )
    await scrape_until(run, lambda m: up(m, "orders") == 1)
    g.primary.pause()
    stopped = time.monotonic()
    hung = await scrape_until(run, lambda m: up(m, "orders") == 0, timeout=10)
    assert value(hung, "tradeops_redis_role_primary", **_t("orders")) is None  # withdrawn
    assert value(hung, "tradeops_redis_sentinel_sentinels_reachable", **_t("orders")) == 3

    promoted: list[float] = []  # when Sentinel first names the replica (for the figure)

    def followed(m: Series) -> bool:
        if not promoted and g.sentinels[0].master_port() == g.replica.port:
            promoted.append(time.monotonic() - stopped)
        return up(m, "orders") == 1 and _changes(m, "orders") == 1

    m = await scrape_until(run, followed, timeout=20, step=0.02)
    follow_seconds = time.monotonic() - stopped
    t = _t("orders")
    assert value(m, "tradeops_redis_role_primary", **t) == 1
    assert value(m, "tradeops_redis_canary_success", **t) == 1  # writes reach the new master
    changed_at = value(m, "tradeops_redis_sentinel_master_last_change_timestamp_seconds", **t)
    assert changed_at is not None and abs(changed_at - time.time()) < 20
    assert (_errors(m, "orders", "timeout") or 0) >= 1
    moves = _records(caplog, "redis sentinel master changed")
    assert len(moves) == 1
    fields = getattr(moves[0], "fields", {})
    assert (fields["previous"], fields["address"]) == (g.primary.address, g.replica.address)
    # the Sentinel the exporter asked names the replica; the others follow it (a
    # loaded machine can find one of them a moment behind)
    assert any(s.master_port() == g.replica.port for s in g.sentinels)
    report(
        f"redis sentinel failover: SIGSTOP of the primary -> the exporter reports the new"
        f" master after {follow_seconds:.1f} s (Sentinel named it after"
        f" {promoted[0] if promoted else follow_seconds:.1f} s; down-after 1 s, interval 600 ms)"
    )
    assert follow_seconds < 15
    # later runs stay on the new master: the counter does not move again
    runs = value(m, "tradeops_probe_runs_total", kind="redis", target="orders") or 0
    later = await scrape_until(
        run,
        lambda m: (
            (value(m, "tradeops_probe_runs_total", kind="redis", target="orders") or 0) >= runs + 2
        ),
    )
    assert (up(later, "orders"), _changes(later, "orders")) == (1, 1)


async def test_a_hung_and_a_stopped_sentinel_are_tolerated(
    sentinel_group: SentinelGroup, tmp_path: Path, exporter_factory: Factory
) -> None:
    g = sentinel_group
    pw = password_file(tmp_path, g.password)
    run: Running = await exporter_factory("redis:" + _target_yaml("orders", g.addresses, pw))
    await scrape_until(run, lambda m: up(m, "orders") == 1)
    g.sentinels[0].pause()  # accepts connections, never answers
    reachable = "tradeops_redis_sentinel_sentinels_reachable"
    m = await scrape_until(run, lambda m: value(m, reachable, **_t("orders")) == 2)
    assert up(m, "orders") == 1
    assert value(m, "tradeops_redis_sentinel_quorum_ok", **_t("orders")) == 1
    duration = value(m, "tradeops_probe_duration_seconds", kind="redis", target="orders")
    assert duration is not None and duration < 0.5, "a hung Sentinel costs a slice, not the run"
    g.sentinels[1].stop()
    # the last Sentinel soon sees the other two down: it could not authorise a failover
    m = await scrape_until(
        run,
        lambda m: (
            value(m, reachable, **_t("orders")) == 1
            and value(m, "tradeops_redis_sentinel_quorum_ok", **_t("orders")) == 0
        ),
        timeout=10,
    )
    assert up(m, "orders") == 1
    assert value(m, "tradeops_redis_sentinel_sentinels_master_up", **_t("orders")) == 1
    assert sum(_errors(m, "orders", r) or 0 for r in ("timeout", "refused", "protocol")) == 0


async def test_failures_of_every_sentinel_are_one_stable_reason(
    sentinel_group: SentinelGroup, tmp_path: Path, exporter_factory: Factory
) -> None:
    """No Sentinel answering is the target's failure, with the reason of the cause;
    the counts stay served and the Sentinels' opinions are absent, not 0."""
    g = sentinel_group
    pw = password_file(tmp_path, g.password)
    wrong = tmp_path / "wrong-pw"
    wrong.write_text("not-the-password")
    nobody = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    run: Running = await exporter_factory(
        "redis:"
        + _target_yaml("unknown-master", g.addresses, pw, master="nosuchmaster")
        + _target_yaml("wrong-password", g.addresses, wrong)
        + _target_yaml("nobody", nobody, pw)
        + _target_yaml("not-a-sentinel", [g.primary.address], pw)
    )
    expected = {
        "unknown-master": "config",
        "wrong-password": "auth",
        "nobody": "refused",
        "not-a-sentinel": "config",
    }

    def three_runs(m: Series) -> bool:
        runs = "tradeops_probe_runs_total"
        return all((value(m, runs, kind="redis", target=n) or 0) >= 3 for n in expected)

    m = await scrape_until(run, three_runs, timeout=15)
    for name, reason in expected.items():
        runs = value(m, "tradeops_probe_runs_total", kind="redis", target=name)
        assert up(m, name) == 0, name
        assert _errors(m, name, reason) == runs, (name, reason)
        configured = value(m, "tradeops_redis_sentinel_sentinels", **_t(name))
        assert configured == (2 if name == "nobody" else 3 if name != "not-a-sentinel" else 1)
        assert value(m, "tradeops_redis_sentinel_sentinels_reachable", **_t(name)) == 0
        assert value(m, "tradeops_redis_sentinel_quorum_ok", **_t(name)) is None
        assert value(m, "tradeops_redis_sentinel_master_changes_total", **_t(name)) == 0


async def test_hostile_sentinels_beside_real_ones_are_only_unreachable(
    sentinel_group: SentinelGroup, tmp_path: Path
) -> None:
    """A flooding, garbling, silent or slow peer in the Sentinel list is one
    Sentinel fewer: each has its own budget and slice of the deadline."""
    pw = password_file(tmp_path, sentinel_group.password)
    async with (
        hostile_peer("huge", reply=b"$2000000000\r\n") as huge,
        hostile_peer("garbage") as garbage,
        hostile_peer("silent") as silent,
        hostile_peer("slow") as slow,
    ):
        addresses = [p.address for p in (huge, garbage, silent, slow)]
        sentinels = [*addresses, *sentinel_group.addresses]
        target = _hostile_sentinels(sentinels, pw, timeout=0.6)
        async with probe_state(target) as state:
            for _ in range(3):
                outcome = await run_probe(KIND, target, state, target.timeout_s)
                assert outcome.ok, outcome.error
                assert outcome.duration < target.timeout_s
                got = values(outcome)
                assert got["tradeops_redis_sentinel_sentinels"] == 7
                assert got["tradeops_redis_sentinel_sentinels_reachable"] == 3
                assert state.sentinel_budgets[0].exceeded, "the flooding peer was cut off"
                assert not state.budget.exceeded, "the run's own budget was not charged"


def _hostile_sentinels(sentinels: list[str], pw: Path, timeout: float) -> RedisTarget:
    """``orders``, its master found through ``sentinels``, hostile peers among them."""
    return redis_target(
        name="orders",
        sentinels=sentinels,
        master="mymaster",
        password_file=str(pw),
        timeout=timeout,
    )


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
async def test_a_hostile_peer_as_the_only_sentinel_is_a_stable_reason(
    behaviour: Behaviour, tmp_path: Path
) -> None:
    pw = password_file(tmp_path, "hostile-pw")
    reason = await lone_peer_reason(behaviour, "sentinels", pw, master="mymaster")
    record_fault("sentinel", behaviour, reason or "ok")
    assert reason == faults.STANDARD_REASONS[behaviour]


async def test_many_runs_beside_failing_sentinels_hold_no_resources(
    sentinel_group: SentinelGroup, tmp_path: Path
) -> None:
    """fds, tasks, threads and RSS at a plateau over many fast runs that each meet a
    Sentinel that hangs up and one that answers garbage beside a real one."""
    pw = password_file(tmp_path, sentinel_group.password)
    async with hostile_peer("close") as close, hostile_peer("garbage") as garbage:
        sentinels = [close.address, garbage.address, sentinel_group.addresses[0]]
        target = _hostile_sentinels(sentinels, pw, timeout=0.5)
        flat = await faults.fresh_plateau(KIND, target, cycles=500, warmup=30)
    report(f"redis sentinel beside a closing and a garbling Sentinel: {flat}")
    assert flat.same_reason() is None, "every run succeeded"
    flat.assert_flat()
