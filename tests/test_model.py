"""Config building blocks: durations, addresses, secrets."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from exporter.model import (
    PasswordMixin,
    Secret,
    check_name,
    parse_duration,
    parse_duration_or_zero,
    parse_host_port,
    parse_interval,
)
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


# YAML's .nan and .inf are floats; 400 nines overflow to inf; 10**400 overflows float()
NOT_FINITE = [math.nan, math.inf, -math.inf, "9" * 400 + "s", 10**400]


@pytest.mark.parametrize("text", NOT_FINITE, ids=["nan", "inf", "-inf", "huge-text", "huge-int"])
def test_durations_must_be_finite(text: object) -> None:
    for parse in (parse_duration, parse_duration_or_zero, parse_interval):
        with pytest.raises(ValueError) as err:
            parse(text)
        assert str(err.value) == "must be a finite duration such as 15s or 500ms"


@pytest.mark.parametrize("text", ["1ms", "99ms", 0.05])
def test_intervals_have_a_floor(text: object) -> None:
    assert parse_duration(text) < 0.1  # a fine duration, but too short an interval
    with pytest.raises(ValueError) as err:
        parse_interval(text)
    assert str(err.value) == "must be at least 100ms (a shorter interval only burns CPU)"


@pytest.mark.parametrize(("text", "seconds"), [("100ms", 0.1), ("15s", 15.0), (0.25, 0.25)])
def test_intervals_at_or_above_the_floor(text: object, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("name", ["cache\n", "cache\r\n", "\ncache", "ca che", "-cache", ""])
def test_names_must_match_in_full(name: str) -> None:
    with pytest.raises(ValueError, match="must start with a letter or digit"):
        check_name(name)


def test_names() -> None:
    assert check_name("cache-primary_1.a:b") == "cache-primary_1.a:b"
    assert check_name("x" * 128) == "x" * 128
    with pytest.raises(ValueError):
        check_name("x" * 129)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:6379", ("127.0.0.1", 6379)),
        ("[::1]:9092", ("::1", 9092)),
        ("cache.internal:1", ("cache.internal", 1)),
        ("tsdb_1:5432", ("tsdb_1", 5432)),
        ("::1:6379", ("::1", 6379)),
    ],
)
def test_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "cache",
        ":6379",
        "cache:0",
        "cache:65536",
        "cache:x",
        "user:secret@cache",
        "user:secret@cache:6379",
        "cache/0:6379",
        "ca che:6379",
    ],
)
def test_bad_host_port_never_echoes_the_value(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_host_port(text)
    assert text not in str(err.value)


def test_host_port_default() -> None:
    assert parse_host_port("cache", default_port=6379) == ("cache", 6379)


def test_env_reference_must_match_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEOPS_TEST_PW", "from-env")
    assert PasswordMixin(password="${TRADEOPS_TEST_PW}").password_value() == "from-env"
    with pytest.raises(ValidationError, match="inline secrets are not accepted"):
        PasswordMixin(password="${TRADEOPS_TEST_PW}\n")


def test_secret_file_that_is_not_utf8_is_named_without_its_bytes(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"s3cr\xe9t\n")
    with pytest.raises(ValidationError) as err:
        PasswordMixin(password_file=pw)
    problems = [e["msg"] for e in err.value.errors(include_input=False)]
    assert problems == [f"Value error, secret file {pw} is not UTF-8 text"]


def test_secret_is_masked_and_registered() -> None:
    s = Secret("correct-horse-battery")
    assert s.reveal() == "correct-horse-battery"
    assert "correct" not in repr(s) and "correct" not in str(s) and "correct" not in f"{s}"
    assert REDACTOR("login correct-horse-battery failed") == "login *** failed"


def test_short_secrets_are_masked_only_as_whole_text() -> None:
    Secret("ab")
    assert REDACTOR("ab") == "***"
    assert REDACTOR("tab stop") == "tab stop"


def test_secret_file_that_is_a_fifo_or_a_device_is_refused_unread(tmp_path: Path) -> None:
    """A FIFO with no writer would hang the load; /dev/zero would fill the memory."""
    fifo = tmp_path / "pw"
    os.mkfifo(fifo)
    for path, problem in [
        (fifo, f"secret file {fifo} is not a regular file"),
        (Path("/dev/zero"), "secret file /dev/zero is not a regular file"),
    ]:
        with pytest.raises(ValidationError) as err:
            PasswordMixin(password_file=path)
        assert [e["msg"] for e in err.value.errors(include_input=False)] == [
            f"Value error, {problem}"
        ]


def test_secret_file_over_64_kib_is_refused(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(ValidationError, match=f"secret file {pw} is larger than 64 KiB"):
        PasswordMixin(password_file=pw)
