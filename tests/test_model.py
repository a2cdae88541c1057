"""Config building blocks: durations, addresses, secrets."""

from __future__ import annotations

import pytest

from exporter.model import Secret, parse_duration, parse_host_port
from exporter.redact import REDACTOR


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("15s", 15.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        (7, 7.0),
        (0.5, 0.5),
        (" 3s ", 3.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["fast", "1d", "-1s", "", True, None, "s"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_zero_duration() -> None:
    with pytest.raises(ValueError, match="greater than zero"):
        parse_duration("0s")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:6379", ("127.0.0.1", 6379)),
        ("[::1]:9092", ("::1", 9092)),
        ("cache.internal:1", ("cache.internal", 1)),
    ],
)
def test_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    "text", ["cache", ":6379", "cache:0", "cache:65536", "cache:x", "user:secret@cache"]
)
def test_bad_host_port_never_echoes_the_value(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_host_port(text)
    assert text not in str(err.value)


def test_host_port_default() -> None:
    assert parse_host_port("cache", default_port=6379) == ("cache", 6379)


def test_secret_is_masked_and_registered() -> None:
    s = Secret("correct-horse-battery")
    assert s.reveal() == "correct-horse-battery"
    assert "correct" not in repr(s) and "correct" not in str(s) and "correct" not in f"{s}"
    assert REDACTOR("login correct-horse-battery failed") == "login *** failed"


def test_short_secrets_are_masked_only_as_whole_text() -> None:
    Secret("ab")
    assert REDACTOR("ab") == "***"
    assert REDACTOR("tab stop") == "tab stop"
