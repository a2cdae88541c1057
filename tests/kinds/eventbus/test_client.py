"""The event-bus kind's ``classify``: aiohttp's failures, and the canary transports'
failures as the Kafka and Redis kinds classify them (one mapping, not a copy)."""

from __future__ import annotations

import aiohttp
import pytest
import redis.exceptions as rexc
from aiokafka import errors as kerr

from exporter.kinds.eventbus.client import classify
from exporter.kinds.kafka import client as kafka_client
from exporter.kinds.redis import client as redis_client
from exporter.probe import classify_error


def _chained(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    "exc",
    [
        kerr.SaslAuthenticationFailed(),
        kerr.AuthenticationFailedError(),
        kerr.TopicAuthorizationFailedError(),
        kerr.UnsupportedSaslMechanismError(),
        _chained(kerr.KafkaConnectionError("closed"), kerr.SaslAuthenticationFailed()),
        kerr.KafkaTimeoutError(),
        kerr.RequestTimedOutError(),
        kerr.KafkaConnectionError("closed"),
        kerr.NodeNotReadyError("no broker"),
        _chained(kerr.KafkaConnectionError("refused"), ConnectionRefusedError()),
        kerr.UnknownTopicOrPartitionError(),
    ],
    ids=repr,
)
def test_kafka_errors_have_the_kafka_kinds_reasons(exc: BaseException) -> None:
    assert classify_error(exc, classify) == classify_error(exc, kafka_client.classify)


def test_a_refused_sasl_login_is_auth_for_both_kinds() -> None:
    for exc in (kerr.SaslAuthenticationFailed(), kerr.AuthenticationFailedError()):
        assert classify_error(exc, classify) == "auth"
        assert classify_error(exc, kafka_client.classify) == "auth"


@pytest.mark.parametrize(
    "exc",
    [
        rexc.AuthenticationError(),
        rexc.ResponseError("NOPERM this user has no permissions"),
        rexc.TimeoutError(),
        rexc.ConnectionError("reset"),
        _chained(rexc.ConnectionError("refused"), ConnectionRefusedError()),
    ],
    ids=repr,
)
def test_redis_errors_have_the_redis_kinds_reasons(exc: BaseException) -> None:
    assert classify_error(exc, classify) == classify_error(exc, redis_client.classify)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (aiohttp.ServerDisconnectedError(), "protocol"),
        (aiohttp.ClientPayloadError("truncated"), "protocol"),
        (aiohttp.ClientConnectionError("closed"), "protocol"),
        (ValueError("not a Kafka or Redis error"), "protocol"),
        (RuntimeError("anything else"), "other"),
    ],
    ids=repr,
)
def test_http_errors(exc: BaseException, reason: str) -> None:
    assert classify_error(exc, classify) == reason
