"""Event-bus configuration (``config.py``): each error names the exact field (as
--check-config prints); the canary's transports take the Kafka and Redis kinds'
connection schemas, with their errors. The old Kafka spellings: ``test_legacy.py``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.config import ConfigError, parse


def _errors(body: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(
            f"eventbus:\n  - name: runtime\n    url: http://127.0.0.1:8080/health\n{body}",
            "cfg.yml",
        )
    return info.value.lines()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "    mapping:\n      retries: {path: 'metadata..retries'}\n",
            "cfg.yml: eventbus[0].mapping.retries.path: bad JSON path 'metadata..retries': "
            "expected a key at 9",
        ),
        (
            "    mapping:\n      retries: {path: 'checks[x]'}\n",
            "cfg.yml: eventbus[0].mapping.retries.path: bad JSON path 'checks[x]': "
            'expected [N] or ["key"] at 6',
        ),
        (
            "    mapping:\n      retries: {path: metadata.retries, type: histogram}\n",
            "cfg.yml: eventbus[0].mapping.retries.type: Input should be 'gauge' or 'counter'",
        ),
        (
            "    mapping:\n      retries: {path: metadata.retries, unit: parsecs}\n",
            "cfg.yml: eventbus[0].mapping.retries.unit: Input should be 'count', 'seconds', "
            "'milliseconds', 'microseconds', 'nanoseconds', 'bytes', 'ratio', 'timestamp' "
            "or 'bool'",
        ),
        (
            "    mapping:\n      retries: {type: counter}\n",
            "cfg.yml: eventbus[0].mapping.retries.path: required for a custom field (default "
            "fields: status, running, queue_depth, queue_capacity, subscribers, "
            "published_events, dropped_events, handler_errors, dispatch_lag, last_event, "
            "last_handler_error, uptime)",
        ),
        (
            "    mapping:\n      queue_depth: {type: counter}\n",
            "cfg.yml: eventbus[0].mapping.queue_depth.type: queue_depth is a default field: "
            "its type is fixed (gauge)",
        ),
        (
            "    mapping:\n      dispatch_lag: {unit: bytes}\n",
            "cfg.yml: eventbus[0].mapping.dispatch_lag.unit: dispatch_lag takes a unit of the "
            "same kind as seconds",
        ),
        (
            "    mapping:\n      seen: {path: a, type: counter, unit: timestamp}\n",
            "cfg.yml: eventbus[0].mapping.seen.unit: a counter cannot have unit timestamp",
        ),
        (
            "    mapping:\n      Retries: {path: a}\n",
            "cfg.yml: eventbus[0].mapping.Retries: field name must match ^[a-z][a-z0-9_]{0,63}$",
        ),
        (  # a trailing newline must not slip past the pattern's $
            '    mapping:\n      "retries\\n": {path: a}\n',
            "cfg.yml: eventbus[0].mapping['retries\\n']: field name must match "
            "^[a-z][a-z0-9_]{0,63}$",
        ),
        (
            '    mapping:\n      status: {states: ["ok\\n", warn]}\n',
            "cfg.yml: eventbus[0].mapping.status.states[0]: bad state name (pattern "
            "^[A-Za-z0-9_.-]{1,32}$, not unknown)",
        ),
        (
            "    mapping:\n      queue_depth: {states: [ok]}\n",
            "cfg.yml: eventbus[0].mapping.queue_depth.states: states applies to status only",
        ),
        (
            "    mapping:\n      status: {states: [ok, unknown]}\n",
            "cfg.yml: eventbus[0].mapping.status.states[1]: bad state name (pattern "
            "^[A-Za-z0-9_.-]{1,32}$, not unknown)",
        ),
        (
            "    root: 'a b'\n",
            "cfg.yml: eventbus[0].root: bad JSON path 'a b': expected '.' or '[' at 1",
        ),
        (
            "    token: hunter2\n",
            "cfg.yml: eventbus[0].token: inline secrets are not accepted: use a ${ENV_VAR} "
            "reference or the *_file field",
        ),
        (
            "    max_response_bytes: 10\n",
            "cfg.yml: eventbus[0].max_response_bytes: Input should be greater than or equal to 256",
        ),
        (
            "    canary: {count: 1}\n",
            "cfg.yml: eventbus[0].canary: give exactly one transport: kafka or redis",
        ),
        (
            "    canary: {redis: {address: 'nohost'}}\n",
            "cfg.yml: eventbus[0].canary.redis.address: expected host:port (the value is not "
            "echoed: it may hold credentials)",
        ),
        (
            "    canary: {kafka: {bootstrap: '127.0.0.1:9092', sasl_mechanism: PLAIN}}\n",
            "cfg.yml: eventbus[0].canary.kafka: sasl_mechanism needs username and password "
            "(or password_file)",
        ),
    ],
)
def test_config_error_names_the_field(body: str, expected: str) -> None:
    assert _errors(body) == [expected]


def test_url_problems() -> None:
    for url, problem in (
        ("ftp://host/health", "expected an http:// or https:// URL"),
        (
            "http://user:pw@host/health",
            "credentials in the URL are not accepted: use token or token_file",
        ),
        ("http:///health", "expected an http:// or https:// URL"),
        ("http://[::1/health", "expected an http:// or https:// URL"),
        ("http://[::1]x/health", "expected an http:// or https:// URL"),
        ("http://host:99999/health", "expected an http:// or https:// URL"),
        ("http://host:port/health", "expected an http:// or https:// URL"),
        ("http://xn--/health", "expected an http:// or https:// URL"),
        ("http://\uff0e/health", "expected an http:// or https:// URL"),
    ):
        with pytest.raises(ConfigError) as info:
            parse(f"eventbus:\n  - {{name: rt, url: '{url}'}}\n", "cfg.yml")
        assert info.value.lines() == [f"cfg.yml: eventbus[0].url: {problem}"]


def test_both_token_sources_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tok").write_text("abc123\n")
    monkeypatch.setenv("EB_TOKEN", "abc123")
    assert _errors(f"    token: '${{EB_TOKEN}}'\n    token_file: {tmp_path / 'tok'}\n") == [
        "cfg.yml: eventbus[0]: give token or token_file, not both"
    ]


OLD_KAFKA = """
        bootstrap: "k1:9092,k2:9092"
        topic: tradeops.eventbus.canary
        sasl_mechanism: SCRAM-SHA-512
        username: exporter
        password: ${KAFKA_PW}"""
NEW_KAFKA = """
        bootstrap_servers: "k1:9092,k2:9092"
        client_id: runtime-canary
        topic: tradeops.eventbus.canary
        sasl: {mechanism: SCRAM-SHA-512, username: exporter, password: "${KAFKA_PW}"}"""


@pytest.mark.parametrize("kafka", [NEW_KAFKA, OLD_KAFKA], ids=["new", "old"])
def test_a_full_example_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafka: str
) -> None:
    monkeypatch.setenv("EB_TOKEN", "tok-123")
    monkeypatch.setenv("KAFKA_PW", "pw-123")
    cfg = parse(
        """
eventbus:
  - name: runtime
    url: https://runtime.internal:8080/health
    token: ${EB_TOKEN}
    root: "checks[0].snapshot"
    mapping:
      last_handler_error: null
      dispatch_lag: {path: metadata.dispatch_lag_ms, unit: milliseconds}
      retries: {path: metadata.retries, type: counter, required: true}
      status: {states: [ok, warn, fail, not_applicable]}
    canary:
      kafka:{kafka}
      count: 3
      deadline: 1500ms
""".replace("{kafka}", kafka),
        "cfg.yml",
    )
    target = cfg.targets["eventbus"][0]
    names = [f.name for f in target.fields]  # type: ignore[attr-defined]
    assert "last_handler_error" not in names and names[-1] == "retries"
    lag = next(f for f in target.fields if f.name == "dispatch_lag")  # type: ignore[attr-defined]
    assert lag.path.segments == ("checks", 0, "snapshot", "metadata", "dispatch_lag_ms")
    assert "tok-123" not in repr(target) and "pw-123" not in repr(target)
    canary = target.canary.kafka  # type: ignore[attr-defined]
    assert canary.servers() == ["k1:9092", "k2:9092"]
    assert canary.sasl.mechanism == "SCRAM-SHA-512" and canary.sasl.password_value() == "pw-123"
    assert canary.client_id == (
        "runtime-canary" if kafka == NEW_KAFKA else "tradeops-exporter-canary"
    )


def test_check_config_reports_bad_path_and_unknown_type_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cfg.yml"
    path.write_text(
        "eventbus:\n  - name: runtime\n    url: http://127.0.0.1:8080/health\n    mapping:\n"
        "      lag: {path: 'metadata..lag'}\n"
        "      retries: {path: metadata.retries, type: gauge2}\n"
    )
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert main(["--config", str(path), "--check-config"]) == 2
    finally:  # main() points the root logger at this test's captured stderr
        root.handlers[:], root.level = handlers, level
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: eventbus[0].mapping.lag.path: bad JSON path 'metadata..lag': expected a key at 9",
        f"{path}: eventbus[0].mapping.retries.type: Input should be 'gauge' or 'counter'",
    ]


@pytest.mark.parametrize(
    "connection",
    [
        "{bootstrap_servers: ' , '}",
        "{bootstrap_servers: 'k1:9092,nohost'}",
        "{bootstrap_servers: 'k1:9092', sasl: {mechanism: GSSAPI, username: u}}",
        "{bootstrap_servers: 'k1:9092', sasl: {username: u}}",
        "{bootstrap_servers: 'k1:9092', sasl: {username: '', password: hunter2}}",
        "{bootstrap_servers: 'k1:9092', tls: {server_name: kafka.internal}}",
        "{bootstrap_servers: 'k1:9092', client_id: 7}",
    ],
)
def test_the_kafka_canary_takes_the_kafka_kinds_connection_schema(connection: str) -> None:
    """The same settings, the same problems, for a Kafka target and the canary."""
    with pytest.raises(ConfigError) as kafka_target:
        parse(f"kafka:\n  - {{name: k, {connection[1:-1]}}}\n", "cfg.yml")
    expected = [
        line.replace("kafka[0]", "eventbus[0].canary.kafka") for line in kafka_target.value.lines()
    ]
    assert _errors(f"    canary: {{kafka: {connection}}}\n") == expected


@pytest.mark.parametrize(
    "connection",
    [
        "{address: 'nohost'}",
        "{address: 'r:6379', db: 16}",
        "{address: 'r:6379', username: 7}",
        "{address: 'r:6379', password: hunter2}",
        "{address: 'r:6379', tls: {server_name: redis.internal}}",
    ],
)
def test_the_redis_canary_takes_the_redis_kinds_connection_fields(connection: str) -> None:
    with pytest.raises(ConfigError) as redis_target:
        parse(f"redis:\n  - {{name: r, {connection[1:-1]}}}\n", "cfg.yml")
    expected = [
        line.replace("redis[0]", "eventbus[0].canary.redis") for line in redis_target.value.lines()
    ]
    assert _errors(f"    canary: {{redis: {connection}}}\n") == expected
