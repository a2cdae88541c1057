"""Which Sentinel to believe, why none answered, and the master's moves, without a
Sentinel group (the real one is in test_redis_sentinel.py)."""

from __future__ import annotations

import redis

from exporter.kinds.redis.sentinel import (
    MasterTracker,
    SentinelAnswer,
    UnknownMaster,
    choose,
    failure,
    series,
)
from exporter.probe import ProbeError, ProbeResult, Sample


def _answer(address: str, epoch: int, quorum_ok: bool = True) -> SentinelAnswer:
    return SentinelAnswer(
        address=address,
        epoch=epoch,
        quorum=2,
        master_down=False,
        failover=False,
        quorum_ok=quorum_ok,
    )


def test_the_highest_epoch_wins_then_the_most_votes_then_config_order() -> None:
    old, new = _answer("10.0.0.1:6379", 1), _answer("10.0.0.2:6379", 2)
    assert choose([old, old, new]) is new, "the Sentinel that led the failover is believed"
    a, b = _answer("10.0.0.1:6379", 3), _answer("10.0.0.2:6379", 3)
    assert choose([a, b, b]).address == b.address
    assert choose([a, b]) is a


def test_no_answer_is_a_config_error_if_one_did_not_know_the_master() -> None:
    refused = redis.exceptions.ConnectionError("refused")
    exc = failure([refused, UnknownMaster("No such master")], "mymaster")
    assert isinstance(exc, ProbeError) and exc.reason == "config"
    assert "'mymaster'" in str(exc)
    auth = redis.exceptions.AuthenticationError("invalid password")
    assert failure([refused, auth], "mymaster") is auth
    assert failure([refused, TimeoutError()], "mymaster") is refused


def test_a_move_is_counted_the_first_address_is_not() -> None:
    tracker = MasterTracker()
    assert tracker.follow("10.0.0.1:6379", 100.0) is None
    assert tracker.follow("10.0.0.1:6379", 101.0) is None
    assert tracker.follow("10.0.0.2:6379", 102.0) == "10.0.0.1:6379"
    assert (tracker.changes, tracker.changed_at) == (1, 102.0)


def test_without_an_answer_the_sentinels_opinions_are_absent() -> None:
    r = ProbeResult()
    series(r, "t", [redis.exceptions.ConnectionError("refused")], MasterTracker())
    got = {s.family.name: s.value for s in r.samples if isinstance(s, Sample)}
    assert got == {
        "tradeops_redis_sentinel_sentinels": 1,
        "tradeops_redis_sentinel_sentinels_reachable": 0,
        "tradeops_redis_sentinel_master_changes_total": 0,
    }
