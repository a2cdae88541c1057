"""The canary's bookkeeping, alone: counts, losses, ordering and the event codec."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exporter.kinds.eventbus import metrics as M
from exporter.kinds.eventbus.tracker import CANARY_TYPE, CanaryTracker, decode, encode


def test_tracker_counts_lost_late_and_out_of_order() -> None:
    t = CanaryTracker(M.CANARY_ROUNDTRIP.buckets)
    a, b, c = t.new(0.0), t.new(0.0), t.new(0.0)
    t.seen(b, 0.004, 1000.0, deadline=1.0)
    t.seen(a, 0.02, 1000.0, deadline=1.0)  # published before b, seen after it
    assert (t.received, t.out_of_order, t.lost) == (2, 1, 0)
    assert t.expire(5.0, deadline=1.0) == 1  # c never came back
    t.seen(c, 6.0, 1001.0, deadline=1.0)  # late arrival: not counted twice
    assert (t.sent, t.received, t.lost) == (3, 2, 1)
    d = t.new(7.0)
    t.failed(d)
    assert t.lost == 2
    h = t.rtt.sample(M.CANARY_ROUNDTRIP, "runtime")
    buckets = dict(zip(t.buckets, h.cumulative_counts, strict=True))
    assert buckets[0.0025] == 0 and buckets[0.005] == 1 and buckets[0.025] == 2
    assert h.count == 2 and h.sum == pytest.approx(0.024)
    assert t.last_rtt == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (json.dumps({"type": CANARY_TYPE, "probe": "me", "seq": 7}), 7),
        (json.dumps({"type": CANARY_TYPE, "probe": "other", "seq": 7}), None),
        (json.dumps({"type": "order.new", "probe": "me", "seq": 7}), None),
        (json.dumps({"type": CANARY_TYPE, "probe": "me", "seq": True}), None),
        ("not json", None),
        (b"\xff\xfe", None),
        (None, None),
    ],
)
def test_decode_only_accepts_own_canaries(raw: Any, expected: int | None) -> None:
    assert decode(raw, "me") == expected


def test_encode_names_the_probe_and_the_target() -> None:
    doc = json.loads(encode("me", "runtime", 3))
    assert {k: doc[k] for k in ("type", "probe", "target", "seq")} == {
        "type": CANARY_TYPE,
        "probe": "me",
        "target": "runtime",
        "seq": 3,
    }
    assert decode(encode("me", "runtime", 3), "me") == 3
