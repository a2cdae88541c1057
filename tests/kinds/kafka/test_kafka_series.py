"""The Kafka probe's series and memory built from hand-made cycle data (no broker).

The test broker cannot delete records (DeleteRecords drops the connection), never
answers OffsetFetch with an error and has no leader elections, so a committed
offset below the log start and cycles that cannot read a group or a partition are
exercised here, on the functions that turn one cycle's answers into series and
prune the per-partition windows.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiokafka.protocol.commit import OffsetFetchResponse_v3

from exporter import config as cfg
from exporter.kinds.kafka import metrics as M
from exporter.kinds.kafka.config import KafkaTarget
from exporter.kinds.kafka.lag import Status
from exporter.kinds.kafka.probe import (
    Cluster,
    Discovery,
    Fetched,
    Group,
    KafkaState,
    LogOffsets,
    Reach,
    _fetch_committed,
    _group_series,
    _prune,
    _read_offset_fetch,
)
from exporter.probe import ProbeResult, Sample


def _values(r: ProbeResult, family: object) -> dict[tuple[str, ...], float]:
    return {s.labels: s.value for s in r.samples if isinstance(s, Sample) and s.family is family}


def test_group_series_flags_offsets_below_log_start_and_sums_commits() -> None:
    target = KafkaTarget(name="c", bootstrap_servers="127.0.0.1:9092", interval=5, timeout=4)
    state = KafkaState(target)
    log = LogOffsets(
        ends={("t", 0): 10, ("t", 1): 10, ("u", 0): 7},
        starts={("t", 0): 3, ("t", 1): 3, ("u", 0): 0},
        at=1000.0,
    )
    offsets = {("t", 0): 1, ("t", 1): 8, ("u", 0): 7}
    r = ProbeResult()
    _group_series(r, state, target, "g", Group(coordinator=1, members=2), Fetched(offsets), log)
    assert set(state.histories["g"]) == {("t", 0), ("t", 1), ("u", 0)}
    assert _values(r, M.TOPIC_EXPIRED) == {("c", "g", "t"): 1, ("c", "g", "u"): 0}
    assert _values(r, M.TOPIC_COMMITTED) == {("c", "g", "t"): 9, ("c", "g", "u"): 7}
    assert _values(r, M.TOPIC_LAG) == {("c", "g", "t"): 11, ("c", "g", "u"): 0}
    assert _values(r, M.GROUP_LAG) == {("c", "g"): 11}
    assert _values(r, M.GROUP_MEMBERS) == {("c", "g"): 2}
    # no log-end samples were recorded: no time lag is invented
    assert _values(r, M.LAG_SECONDS) == {}
    assert _values(r, M.GROUP_STATUS)[("c", "g", "ok")] == 1


def test_group_without_readable_offsets_reports_state_only() -> None:
    target = KafkaTarget(name="c", bootstrap_servers="127.0.0.1:9092", interval=5, timeout=4)
    r = ProbeResult()
    log = LogOffsets({}, {}, 0.0)
    state = KafkaState(target)
    _group_series(r, state, target, "g", Group(coordinator=1), None, log)
    assert state.histories == {}
    assert _values(r, M.GROUP_STATE)[("c", "g", "unknown")] == 1
    assert _values(r, M.GROUP_LAG) == {}
    assert _values(r, M.GROUP_STATUS) == {}


# --- cycles that cannot read everything ------------------------------------------

CLUSTER = Cluster(brokers=[], controller=1, partitions={"t": {0: 1, 1: 1}, "u": {0: 1}})
STOPPED = Group(coordinator=1, state="empty", members=0)


def _cycle(
    state: KafkaState,
    fetched: dict[str, Fetched],
    ends: dict[tuple[str, int], int],
    at: float,
    groups: dict[str, Group] | None = None,
    cluster: Cluster = CLUSTER,
) -> ProbeResult:
    """What ``probe`` does with one cycle's answers: prune, then add points and emit."""
    groups = {"g": STOPPED} if groups is None else groups
    r = ProbeResult()
    _prune(state, cluster, groups, fetched)
    log = LogOffsets(ends, dict.fromkeys(ends, 0), at)
    for name, group in groups.items():
        _group_series(r, state, state.target, name, group, fetched.get(name), log)
    return r


def _status(r: ProbeResult) -> str | None:
    on = [labels[2] for labels, v in _values(r, M.GROUP_STATUS).items() if v == 1]
    return on[0] if on else None


def _window_target() -> KafkaTarget:
    return KafkaTarget(
        name="c", bootstrap_servers="127.0.0.1:9092", interval=5, timeout=4, status_window=3
    )


def test_missed_cycles_keep_the_window_so_stop_needs_window_real_points_not_a_restart() -> None:
    state = KafkaState(_window_target())
    stuck = Fetched({("t", 0): 4, ("u", 0): 5})  # t/0 stuck behind, u/0 caught up
    ends = {("t", 0): 10, ("t", 1): 0, ("u", 0): 5}
    r = _cycle(state, {"g": stuck}, ends, 100.0)
    assert _status(r) == "ok"
    # the group's OffsetFetch fails as a whole: no point, the windows are kept
    r = _cycle(state, {}, ends, 200.0)
    assert _values(r, M.GROUP_STATUS) == {} and _values(r, M.LAG) == {}
    assert [list(h.commits) for h in state.histories["g"].values()] == [[4], [5]]
    r = _cycle(state, {"g": stuck}, ends, 300.0)
    assert _status(r) == "ok"  # two real points: not a full window yet
    # t/0 has no log-end offset (leader election): absent, no point, window kept
    r = _cycle(state, {"g": stuck}, {("t", 1): 0, ("u", 0): 5}, 400.0)
    assert _values(r, M.LAG) == {("c", "g", "u", "0"): 0}
    assert ("c", "g", "t") not in _values(r, M.TOPIC_LAG)  # a partial sum would lie
    assert _values(r, M.GROUP_ADVANCED) == {("c", "g"): 100.0}
    assert list(state.histories["g"][("t", 0)].commits) == [4, 4]
    # the third real point fills the window: stop, five cycles after the first
    r = _cycle(state, {"g": stuck}, ends, 500.0)
    assert _status(r) == "stop"
    assert state.histories["g"][("t", 0)].status(has_members=False) is Status.STOP
    # first seen at 100 and never moved since: the missed cycles did not reset it
    assert _values(r, M.GROUP_ADVANCED) == {("c", "g"): 100.0}
    assert _values(r, M.LAG)[("c", "g", "t", "0")] == 6


def test_partition_answered_with_an_error_keeps_its_window_and_the_drain_rate() -> None:
    state = KafkaState(_window_target())
    ends = {("t", 0): 100, ("t", 1): 100, ("u", 0): 0}
    _cycle(state, {"g": Fetched({("t", 0): 0, ("t", 1): 0})}, ends, 0.0)
    failed = Fetched({("t", 0): 10}, failed=frozenset({("t", 1)}))
    r = _cycle(state, {"g": failed}, {k: v + 10 for k, v in ends.items()}, 10.0)
    assert _values(r, M.COMMITTED) == {("c", "g", "t", "0"): 10}
    # the topic's sums and drain would cover one partition of two: absent this cycle
    assert _values(r, M.TOPIC_COMMITTED) == {} and _values(r, M.DRAINING) == {}
    assert set(state.histories["g"]) == {("t", 0), ("t", 1)}
    assert len(state.drains[("g", "t")].window) == 1
    r = _cycle(state, {"g": Fetched({("t", 0): 40, ("t", 1): 40})}, ends, 20.0)
    # one window over both real points: consumed 80, produced 0 in 20 s, lag 120
    assert len(state.drains[("g", "t")].window) == 2
    assert _values(r, M.DRAIN) == {("c", "g", "t"): pytest.approx(30.0)}
    assert _values(r, M.TOPIC_COMMITTED) == {("c", "g", "t"): 80}


def test_vanished_group_deleted_partition_and_dropped_commit_are_pruned() -> None:
    state = KafkaState(_window_target())
    ends = {("t", 0): 10, ("t", 1): 10, ("u", 0): 10}
    everything = Fetched({("t", 0): 1, ("t", 1): 1, ("u", 0): 1})
    two = {"g": STOPPED, "h": STOPPED}
    _cycle(state, {"g": everything, "h": everything}, ends, 0.0, groups=two)
    state.discovery["h"] = Discovery(topics={"t", "u"})
    assert set(state.histories) == {"g", "h"} and len(state.drains) == 4
    # h is no longer listed; g's OffsetFetch answered t/1 without a commit; u was deleted
    no_u = Cluster(brokers=[], controller=1, partitions={"t": {0: 1, 1: 1}})
    answer = Fetched({("t", 0): 2}, asked=frozenset({"t"}))
    _cycle(state, {"g": answer}, ends, 10.0, cluster=no_u)
    assert state.histories == {"g": {("t", 0): state.histories["g"][("t", 0)]}}
    assert set(state.drains) == {("g", "t")}
    assert "h" not in state.discovery


def test_offset_fetch_answer_is_split_into_committed_failed_and_uncommitted() -> None:
    """aiokafka's own response struct, encoded and decoded: the test broker never
    answers OffsetFetch with a per-partition error."""
    response = OffsetFetchResponse_v3.decode(
        OffsetFetchResponse_v3(
            throttle_time_ms=0,
            topics=[("t", [(0, 7, "", 0), (1, -1, "", 0), (2, -1, "", 14)])],
            error_code=0,
        ).encode()
    )
    got = _read_offset_fetch(response, ["t"])  # t/3 (asked) is not in the answer at all
    assert got == Fetched({("t", 0): 7}, failed=frozenset({("t", 2)}), asked=frozenset({"t"}))
    no_commit = [got.uncommitted(("t", p)) for p in range(4)]
    assert no_commit == [False, True, False, True]
    assert not got.uncommitted(("u", 0))  # not asked about


class _Answers(KafkaState):
    """A fake ``send``: the test broker (Tansu) answers every OffsetFetch without an
    error code, so group-level and per-partition errors are forced here."""

    def __init__(self, target: KafkaTarget, answers: dict[str, Any]) -> None:
        super().__init__(target)
        self.answers = answers

    async def send(self, node: int, request: Any) -> Any:
        self.count(1)
        group = request._consumer_group
        answer = self.answers[group]
        return type(answer).decode(answer.encode())


async def test_offset_fetch_errors_count_failed_groups_and_failed_partitions() -> None:
    target = _window_target()
    cluster = Cluster(brokers=[], controller=1, partitions={"t": {0: 1, 1: 1, 2: 1}})
    partitions = [(0, 3, "", 0), (1, -1, "", 14), (2, -1, "", 16)]
    state = _Answers(
        target,
        {
            "g": OffsetFetchResponse_v3(0, [("t", partitions)], 0),
            "down": OffsetFetchResponse_v3(0, [], 15),  # coordinator not available
        },
    )
    groups = {"g": Group(coordinator=1), "down": Group(coordinator=1)}
    reach = Reach(asyncio.get_running_loop().time() + 5)
    fetched, failures = await _fetch_committed(state, target, cluster, groups, 0.0, reach)
    assert failures == 3  # one group as a whole, two partitions
    assert reach.failed == {}  # error codes for one group are not the broker's failure
    assert set(fetched) == {"g"}
    assert fetched["g"].failed == {("t", 1), ("t", 2)}
    # a topic answered with errors stays in the group's topics: asked again next cycle
    assert state.discovery["g"].topics == {"t"}


def test_sasl_and_tls_settings_and_secret_handling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test broker speaks neither SASL nor TLS: this checks what the client is given."""
    monkeypatch.setenv("KAFKA_TEST_PASSWORD", "s3cret-value")
    system_ca = ssl.get_default_verify_paths().cafile
    if system_ca is None or not Path(system_ca).is_file():
        pytest.skip("no system CA bundle to build a TLS context from")
    ca = tmp_path / "ca.pem"
    ca.write_text(Path(system_ca).read_text())
    config = cfg.parse(
        f"""
kafka:
  - name: secure
    bootstrap_servers: "k1:9093, k2:9093"
    tls: {{ca_file: {ca}}}
    sasl: {{mechanism: SCRAM-SHA-512, username: monitor, password: "${{KAFKA_TEST_PASSWORD}}"}}
  - name: plain-sasl
    bootstrap_servers: k1:9092
    sasl: {{username: monitor, password_file: {_secret_file(tmp_path)}}}
""",
        "cfg.yml",
    )
    secure, plain = config.targets["kafka"]
    assert isinstance(secure, KafkaTarget) and isinstance(plain, KafkaTarget)
    assert secure.bootstrap_servers == "k1:9093,k2:9093"
    settings = KafkaState(secure)._settings()
    assert settings["security_protocol"] == "SASL_SSL"
    assert settings["sasl_mechanism"] == "SCRAM-SHA-512"
    assert settings["sasl_plain_password"] == "s3cret-value"
    assert settings["ssl_context"] is not None
    assert "s3cret" not in repr(secure)
    plain_settings = KafkaState(plain)._settings()
    assert plain_settings["security_protocol"] == "SASL_PLAINTEXT"
    assert plain_settings["sasl_mechanism"] == "PLAIN"
    assert plain_settings["sasl_plain_password"] == "from-a-file"


def _secret_file(directory: Path) -> Path:
    path = directory / "kafka-password"
    path.write_text("from-a-file\n")
    return path


def test_lag_objectives_are_matched_once_per_group_and_forgotten_with_it() -> None:
    target = KafkaTarget.model_validate(
        {
            "name": "c",
            "bootstrap_servers": "127.0.0.1:9092",
            "lag_objectives": [{"groups": "risk-.*", "objective": "5s", "calendar": "x"}],
        }
    )
    state = KafkaState(target)
    first = state.objectives_of(["risk-1", "pricing"])
    assert first == {"risk-1": (5.0, "x"), "pricing": (60.0, "always")}
    # a group that vanished is forgotten; the others are served from the cache
    assert state.objectives_of(["pricing"]) is state.objectives
    assert state.objectives == {"pricing": (60.0, "always")}
    assert target.lag_objective("risk-") == (5.0, "x")
    assert target.lag_objective("xrisk-1") == (60.0, "always")  # a full match only
