"""The probe's state (exporter/kinds/kafka/probe.py): the client's settings and the
per-group caches it keeps."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from exporter import config as cfg
from exporter.kinds.kafka.config import KafkaTarget
from exporter.kinds.kafka.probe import KafkaState


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
