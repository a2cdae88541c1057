"""``kafka.connection.settings``: the aiokafka settings of the Kafka connection schema,
one function for the Kafka probe and the event-bus canary."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from exporter.kinds.kafka.config import KafkaConnection, KafkaTarget
from exporter.kinds.kafka.connection import settings
from exporter.kinds.kafka.probe import KafkaState

from ...helpers import self_signed_cert


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "pw"
    path.write_text("s3cret\n")
    return path


def _sasl(password_file: Path, mechanism: str = "SCRAM-SHA-256") -> dict[str, Any]:
    return {"mechanism": mechanism, "username": "monitor", "password_file": str(password_file)}


def test_plain() -> None:
    conn = KafkaConnection.model_validate({"bootstrap_servers": "k1:9092, k2:9092"})
    assert conn.servers() == ["k1:9092", "k2:9092"]
    assert settings(conn, None, 1.5) == {
        "client_id": "tradeops-exporter",
        "request_timeout_ms": 1500,
        "security_protocol": "PLAINTEXT",
    }


@pytest.mark.parametrize("tls", [False, True])
def test_sasl_with_and_without_tls(tls: bool, password_file: Path, tmp_path: Path) -> None:
    conn = KafkaConnection.model_validate(
        {"bootstrap_servers": "k1:9092", "client_id": "me", "sasl": _sasl(password_file)}
    )
    context = ssl.create_default_context(cafile=str(self_signed_cert(tmp_path)[0])) if tls else None
    expected: dict[str, Any] = {
        "client_id": "me",
        "request_timeout_ms": 2000,
        "security_protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "monitor",
        "sasl_plain_password": "s3cret",
    }
    if tls:
        expected["ssl_context"] = context
    assert settings(conn, context, 2.0) == expected


def test_tls_without_sasl(tmp_path: Path) -> None:
    conn = KafkaConnection.model_validate({"bootstrap_servers": "k1:9093"})
    context = ssl.create_default_context(cafile=str(self_signed_cert(tmp_path)[0]))
    assert settings(conn, context, 1.0) == {
        "client_id": "tradeops-exporter",
        "request_timeout_ms": 1000,
        "security_protocol": "SSL",
        "ssl_context": context,
    }


@pytest.mark.parametrize("secure", [False, True])
def test_the_probe_state_builds_the_same_settings(
    secure: bool, password_file: Path, tmp_path: Path
) -> None:
    fields: dict[str, Any] = {"name": "k", "bootstrap_servers": "k1:9092", "timeout": 1.25}
    if secure:
        cert, _ = self_signed_cert(tmp_path)
        fields |= {"sasl": _sasl(password_file, "PLAIN"), "tls": {"ca_file": str(cert)}}
    target = KafkaTarget.model_validate(fields | {"interval": 5})
    state = KafkaState(target)
    assert state._settings() == settings(target, state.ssl_context, target.timeout_s)
