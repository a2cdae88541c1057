"""The Kafka probe's series built from hand-made cycle data (no broker).

The test broker cannot delete records (DeleteRecords drops the connection), so
a committed offset below the log start is exercised here, on the function that
turns one cycle's offsets into series.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from exporter import config as cfg
from exporter.catalogue import kafka as M
from exporter.probe import ProbeResult, Sample
from exporter.probes.kafka import Group, KafkaState, KafkaTarget, LogOffsets, _group_series


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
    seen = _group_series(r, state, target, "g", Group(coordinator=1, members=2), offsets, log)
    assert seen == {("g", "t", 0), ("g", "t", 1), ("g", "u", 0)}
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
    seen = _group_series(r, KafkaState(target), target, "g", Group(coordinator=1), None, log)
    assert seen == set()
    assert _values(r, M.GROUP_STATE)[("c", "g", "unknown")] == 1
    assert _values(r, M.GROUP_LAG) == {}
    assert _values(r, M.GROUP_STATUS) == {}


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
