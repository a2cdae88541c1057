"""``CLUSTER NODES`` and ``CLUSTER INFO`` parsing, the seeds' order and the node cap,
without a cluster (the real one is in test_redis_cluster.py)."""

from __future__ import annotations

import pytest

from exporter.kinds.redis.cluster import (
    SeedOrder,
    node_series,
    parse_info,
    parse_nodes,
)
from exporter.probe import ProbeError, ProbeResult, Sample

A, B, C = "a" * 40, "b" * 40, "c" * 40
_NODES = f"""\
{A} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
{B} 127.0.0.1:7001@17001 master,fail? - 0 1 2 disconnected 5461 5462-10922 [5463->-{C}]
{C} 127.0.0.1:7002@17002 slave {A} 0 1 3 connected
{"d" * 40} 127.0.0.1:7003@17003 handshake - 0 0 0 connected
"""


def test_nodes_their_roles_links_and_slots() -> None:
    nodes = {n.id: n for n in parse_nodes(_NODES)}
    assert sorted(nodes) == [A, B, C], "a node in the handshake is left out"
    a, b, c = nodes[A], nodes[B], nodes[C]
    assert (a.primary, a.link_up, a.slots, a.primary_id) == (True, True, 5461, None)
    # a slot in migration is not counted; a single slot is one
    assert (b.primary, b.link_up, b.slots, "fail?" in b.flags) == (True, False, 5462, True)
    assert (c.primary, c.link_up, c.slots, c.primary_id) == (False, True, 0, A)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"{A} 127.0.0.1:7000 master - 0 0 1", "fewer than 8 fields"),
        ("node-1 127.0.0.1:7000 master - 0 0 1 connected", "not 40 hex digits"),
        (f"{A} 127.0.0.1:7000 master - 0 0 1 connected 0-x", "not numeric"),
    ],
)
def test_a_malformed_line_is_a_protocol_error(line: str, message: str) -> None:
    with pytest.raises(ProbeError) as err:
        parse_nodes(line)
    assert err.value.reason == "protocol"
    assert message in str(err.value)


def test_info_lines() -> None:
    text = "cluster_state:ok\r\ncluster_slots_ok:16384\r\n\r\nnot a field\r\n"
    assert parse_info(text) == {"cluster_state": "ok", "cluster_slots_ok": "16384"}


def test_the_seed_that_answered_last_is_asked_first() -> None:
    order = SeedOrder(3)
    assert order.order() == [0, 1, 2]
    order.last_good = 2
    assert order.order() == [2, 0, 1]


def test_nodes_beyond_max_nodes_are_counted_primaries_first() -> None:
    r = ProbeResult()
    node_series(r, "t", parse_nodes(_NODES), max_nodes=2)
    samples = [s for s in r.samples if isinstance(s, Sample)]
    shown = {s.labels[1] for s in samples if s.family.name.endswith("_node_primary")}
    assert shown == {A, B}
    unreported = [s.value for s in samples if s.family.name.endswith("_nodes_unreported")]
    assert unreported == [1]
    replicas = {s.labels[1]: s.value for s in samples if s.family.name.endswith("_node_replicas")}
    assert replicas == {A: 1, B: 0}
