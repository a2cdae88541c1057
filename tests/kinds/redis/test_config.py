"""The Redis target model: one of the three modes, the fields that go with each,
bounds, and addresses that are checked without being echoed."""

from __future__ import annotations

import pytest

from exporter.config import ConfigError, parse
from exporter.kinds.redis.config import RedisTarget

_CLUSTER_ONLY = (
    "not supported with cluster (a cluster target reports the cluster;"
    " probe a node's keys with a target of its own)"
)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            'address: "127.0.0.1:6379"\n    sentinels: ["127.0.0.1:26379"]\n    master: m',
            "give exactly one of address, sentinels or cluster",
        ),
        (
            'sentinels: ["127.0.0.1:26379"]',
            "sentinels needs master: the name the Sentinels monitor",
        ),
        ('address: "127.0.0.1:6379"\n    master: m', "master goes with sentinels"),
        ('address: "127.0.0.1:6379"\n    max_nodes: 3', "max_nodes goes with cluster"),
        (
            'cluster: ["127.0.0.1:7000"]\n    address: "127.0.0.1:6379"',
            "give exactly one of address, sentinels or cluster",
        ),
        (
            'cluster: ["127.0.0.1:7000"]\n    sentinels: ["127.0.0.1:26379"]\n    master: m',
            "give exactly one of address, sentinels or cluster",
        ),
        (
            'cluster: ["127.0.0.1:7000"]\n    canary: {}\n    heartbeats: [{name: h, key: k}]',
            f"canary, heartbeats: {_CLUSTER_ONLY}",
        ),
        ('cluster: ["127.0.0.1:7000"]\n    db: 2', f"db: {_CLUSTER_ONLY}"),
    ],
)
def test_config_errors_name_the_fields(fields: str, message: str) -> None:
    text = f"redis:\n  - name: cache\n    {fields}\n"
    with pytest.raises(ConfigError) as err:
        parse(text, "cfg.yml")
    assert err.value.lines() == [f"cfg.yml: redis[0]: {message}"]


def test_without_sentinels_or_cluster_the_address_is_required() -> None:
    """As before Sentinel and Cluster targets existed; the other fields are checked too."""
    with pytest.raises(ConfigError) as err:
        parse("redis:\n  - {name: cache, db: 16}\n", "cfg.yml")
    assert err.value.lines() == [
        "cfg.yml: redis[0].address: required field is missing",
        "cfg.yml: redis[0].db: Input should be less than or equal to 15",
    ]


def test_sentinel_addresses_are_checked_without_echoing_them() -> None:
    text = 'redis:\n  - {name: cache, master: m, sentinels: ["user:pw@host"]}\n'
    with pytest.raises(ConfigError) as err:
        parse(text, "cfg.yml")
    assert err.value.lines() == [
        "cfg.yml: redis[0].sentinels[0]: "
        "expected host:port (the value is not echoed: it may hold credentials)"
    ]


def test_max_nodes_and_seeds_are_bounded() -> None:
    seeds = ", ".join(f'"127.0.0.1:{7000 + i}"' for i in range(17))
    text = f"redis:\n  - {{name: c, cluster: [{seeds}], max_nodes: 0}}\n"
    with pytest.raises(ConfigError) as err:
        parse(text, "cfg.yml")
    assert err.value.lines() == [
        "cfg.yml: redis[0].cluster: List should have at most 16 items after validation, not 17",
        "cfg.yml: redis[0].max_nodes: Input should be greater than or equal to 1",
    ]


def test_heartbeats_and_the_canary_default_to_a_minute() -> None:
    target = RedisTarget.model_validate(
        {
            "name": "cache",
            "address": "127.0.0.1:6379",
            "heartbeats": [{"name": "ingest", "key": "hb:ingest"}],
            "canary": {},
        }
    )
    (hb,) = target.heartbeats
    assert (hb.max_gap, hb.calendar, hb.field) == (60.0, None, None)
    assert target.canary is not None
    assert (target.canary.key, target.canary.ttl) == (None, 60.0)
