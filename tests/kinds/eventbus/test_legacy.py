"""The canary's old Kafka spellings (``legacy.py``): still loaded, mapped onto the Kafka
connection schema, one deprecation warning per old field and config load, the old
errors for old fields, and an error naming the field when both spellings are given."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from exporter.config import ConfigError, parse
from exporter.kinds.eventbus.config import EventBusTarget, KafkaCanary

WARNING = "deprecated config field, to be removed in the next release"


def _text(kafka: str, name: str = "runtime") -> str:
    return (
        f"eventbus:\n  - name: {name}\n    url: http://127.0.0.1:8080/health\n"
        f"    canary: {{kafka: {kafka}}}\n"
    )


def _kafka(text: str) -> KafkaCanary:
    target = parse(text, "cfg.yml").targets["eventbus"][0]
    assert isinstance(target, EventBusTarget) and target.canary and target.canary.kafka
    return target.canary.kafka


def _errors(kafka: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(_text(kafka), "cfg.yml")
    return info.value.lines()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        getattr(r, "fields", {})
        for r in caplog.records
        if r.levelno == logging.WARNING and r.getMessage() == WARNING
    ]


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "kafka-pw"
    path.write_text("from-a-file\n")
    return path


def test_old_names_load_as_the_schema_with_one_warning_per_field(
    caplog: pytest.LogCaptureFixture, password_file: Path
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter")
    old = _kafka(
        _text(
            "{bootstrap: ['k1:9092', 'k2:9092'], topic: bus.canary, sasl_mechanism: SCRAM-SHA-512,"
            f" username: monitor, password_file: '{password_file}'}}"
        )
    )
    assert _warnings(caplog) == [
        {
            "kind": "eventbus",
            "target": "runtime",
            "field": f"canary.kafka.{old_name}",
            "replacement": f"canary.kafka.{new_name}",
        }
        for old_name, new_name in (
            ("bootstrap", "bootstrap_servers"),
            ("sasl_mechanism", "sasl.mechanism"),
            ("username", "sasl.username"),
            ("password_file", "sasl.password_file"),
        )
    ]
    caplog.clear()
    new = _kafka(
        _text(
            "{bootstrap_servers: 'k1:9092,k2:9092', topic: bus.canary, sasl: {mechanism:"
            f" SCRAM-SHA-512, username: monitor, password_file: '{password_file}'}}}}"
        )
    )
    assert _warnings(caplog) == []
    fields = list(KafkaCanary.model_fields)
    assert [getattr(old, f) for f in fields] == [getattr(new, f) for f in fields]
    assert old.renames and not new.renames
    assert old.servers() == ["k1:9092", "k2:9092"]
    assert old.sasl is not None and old.sasl.password_value() == "from-a-file"


def test_each_load_warns_once_per_target(caplog: pytest.LogCaptureFixture) -> None:
    """Once per load, naming each target: not per module copy or per probe run."""
    caplog.set_level(logging.WARNING, logger="exporter")
    two = _text("{bootstrap: 'k1:9092'}") + (
        "  - name: second\n    url: http://127.0.0.1:8081/health\n"
        "    canary: {kafka: {bootstrap: 'k2:9092'}}\n"
    )
    for _ in range(2):
        parse(two, "cfg.yml")
    targets = [w["target"] for w in _warnings(caplog)]
    assert targets == ["runtime", "second", "runtime", "second"]


def test_a_bootstrap_string_is_a_list(caplog: pytest.LogCaptureFixture) -> None:
    assert _kafka(_text("{bootstrap: 'k1:9092, k2:9092'}")).bootstrap_servers == "k1:9092,k2:9092"


def test_sasl_fields_without_a_mechanism_still_do_nothing(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As before, ``username``/``password`` without ``sasl_mechanism`` turn no SASL on;
    the warning says so."""
    monkeypatch.setenv("KAFKA_PW", "pw-123")
    caplog.set_level(logging.WARNING, logger="exporter")
    kafka = _kafka(_text("{bootstrap: 'k1:9092', username: u, password: '${KAFKA_PW}'}"))
    assert kafka.sasl is None
    notes = [(w["field"], w.get("note")) for w in _warnings(caplog)]
    assert notes == [
        ("canary.kafka.bootstrap", None),
        ("canary.kafka.username", "no effect without sasl_mechanism, as before"),
        ("canary.kafka.password", "no effect without sasl_mechanism, as before"),
    ]


@pytest.mark.parametrize(
    ("kafka", "expected"),
    [
        (
            "{bootstrap: 'k1:9092', bootstrap_servers: 'k1:9092'}",
            [".bootstrap: give bootstrap_servers or the deprecated bootstrap, not both"],
        ),
        (
            "{bootstrap_servers: 'k1:9092', username: u, sasl: {username: u, password_file: {pw}}}",
            [".username: give sasl.username or the deprecated username, not both"],
        ),
        (
            "{bootstrap_servers: 'k1:9092', sasl_mechanism: PLAIN, password_file: {pw},"
            " sasl: {username: u, password_file: {pw}}}",
            [
                ".sasl_mechanism: give sasl.mechanism or the deprecated sasl_mechanism, not both",
                ".password_file: give sasl.password_file or the deprecated password_file, not both",
                ": sasl_mechanism needs username and password (or password_file)",
            ],
        ),
    ],
)
def test_both_spellings_are_an_error_naming_the_field(
    kafka: str, expected: list[str], password_file: Path
) -> None:
    lines = _errors(kafka.replace("{pw}", str(password_file)))
    assert lines == [f"cfg.yml: eventbus[0].canary.kafka{e}" for e in expected]


@pytest.mark.parametrize(
    ("kafka", "expected"),
    [
        (
            "{bootstrap: []}",
            ["bootstrap: List should have at least 1 item after validation, not 0"],
        ),
        ("{bootstrap: null}", ["bootstrap: Input should be a valid list"]),
        (
            "{bootstrap: ['127.0.0.1:9092', 'nohost']}",
            ["bootstrap: expected host:port (the value is not echoed: it may hold credentials)"],
        ),
        (
            "{bootstrap: 'a:1', sasl_mechanism: GSSAPI, username: u, password_file: {pw}}",
            [
                "sasl_mechanism: Input should be 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'",
            ],
        ),
        (
            "{bootstrap: 'a:1', sasl_mechanism: PLAIN, username: u, password: hunter2}",
            [
                "password: inline secrets are not accepted: use a ${ENV_VAR} reference or the"
                " *_file field"
            ],
        ),
        (  # the old fields' problems first, then the others'
            "{bootstrap: [], topic: 'bad topic'}",
            [
                "bootstrap: List should have at least 1 item after validation, not 0",
                "topic: String should match pattern '^[A-Za-z0-9._-]{1,249}$'",
            ],
        ),
    ],
)
def test_old_fields_keep_their_old_errors(
    kafka: str, expected: list[str], password_file: Path
) -> None:
    lines = _errors(kafka.replace("{pw}", str(password_file)))
    assert lines == [f"cfg.yml: eventbus[0].canary.kafka.{e}" for e in expected]


def test_a_missing_bootstrap_names_the_new_field() -> None:
    assert _errors("{topic: bus.canary}") == [
        "cfg.yml: eventbus[0].canary.kafka.bootstrap_servers: required field is missing"
    ]
