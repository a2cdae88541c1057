"""Structured log lines, with secrets masked in the message and every field."""

from __future__ import annotations

import itertools
import json
import logging

import pytest

from exporter import logs
from exporter.model import Secret
from exporter.redact import MAX_TEXT, bounded, error_text


@pytest.fixture
def captured(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    return capsys


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_lines_carry_fields_and_mask_secrets(
    fmt: str, captured: pytest.CaptureFixture[str]
) -> None:
    Secret("tr0ub4dor-and-3")
    logs.setup(fmt, "info")
    try:
        logs.log(
            logging.WARNING,
            "probe failed for tr0ub4dor-and-3",
            kind="redis",
            target="cache",
            error='AuthError: password "tr0ub4dor-and-3" rejected',
        )
        logs.log(logging.DEBUG, "not shown")
    finally:
        logging.getLogger().handlers.clear()
    err = captured.readouterr().err.strip().splitlines()
    assert len(err) == 1
    line = err[0]
    assert "tr0ub4dor" not in line
    if fmt == "json":
        record = json.loads(line)
        assert record["level"] == "warning" and record["kind"] == "redis"
        assert record["msg"] == "probe failed for ***"
        assert record["error"] == 'AuthError: password "***" rejected'
    else:
        assert 'level=warning msg="probe failed for ***" kind=redis target=cache' in line
        assert 'error="AuthError: password \\"***\\" rejected"' in line


def test_client_library_connection_noise_is_dropped(captured: pytest.CaptureFixture[str]) -> None:
    logs.setup("logfmt", "info")
    try:
        logging.getLogger("aiokafka.conn").error("Unable connect to node with id 1")
        logging.getLogger("aiokafka.cluster").critical("cluster metadata is corrupt")
    finally:
        logging.getLogger().handlers.clear()
    err = captured.readouterr().err
    assert "Unable connect" not in err
    assert "cluster metadata is corrupt" in err


def test_a_failing_condition_is_logged_once_per_episode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="exporter")
    who = {"kind": "redis", "target": "cache"}
    messages = ("it failed", "it recovered")
    sequence = [None, "refused", "refused", "timeout", None, None]
    for before, after in itertools.pairwise(sequence):
        logs.log_change(before, after, messages, who, error=f"{after} error")
    got = [(r.levelno, r.getMessage(), r.fields) for r in caplog.records]  # type: ignore[attr-defined]
    assert got == [
        (logging.WARNING, "it failed", {**who, "error": "refused error"}),
        (logging.DEBUG, "it failed", {**who, "error": "refused error"}),
        (logging.WARNING, "it failed", {**who, "error": "timeout error"}),  # a new failure
        (logging.INFO, "it recovered", who),  # without the old error
    ]


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_peer_bytes_are_escaped_and_capped(fmt: str, captured: pytest.CaptureFixture[str]) -> None:
    """A garbage peer's 300 KB reply, control characters and all, stays one short line."""
    garbage = "\x00\x1b[2J" + "\xff" * 300_000 + "\u2028tail"
    logs.setup(fmt, "info")
    try:
        logs.log(logging.WARNING, "probe failed", kind="eventbus", error=garbage)
    finally:
        logging.getLogger().handlers.clear()
    lines = captured.readouterr().err.splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert len(line) < 2 * MAX_TEXT + 200
    assert "\x00" not in line and "\x1b" not in line and "\u2028" not in line
    assert "more characters]" in line
    if fmt == "json":
        assert json.loads(line)["error"].startswith("\\x00\\x1b[2J\xff\xff")
    else:  # logfmt escapes the backslash once more
        assert 'error="\\\\x00\\\\x1b[2J\xff\xff' in line
    shown = MAX_TEXT - 2 * 3  # two characters escaped to four each
    assert f"...[{len(garbage) - shown} more characters]" in line


def test_error_text_is_one_bounded_line() -> None:
    first = "first\x07 line " + "y" * 5000
    text = error_text(ValueError(first + "\nsecond line"))
    assert text.startswith("ValueError: first\\x07 line yyy")
    assert "second" not in text
    cut = len("ValueError: ") + len(first) - (MAX_TEXT - 3)  # \x07 takes four
    assert text.endswith("y" * 10 + f"...[{cut} more characters]")


def test_escaping_does_not_grow_a_value_past_the_cap() -> None:
    """512 unprintable characters escape to six times their length: the cap holds after."""
    text = bounded("\ue000" * 600)
    assert text.startswith("\\ue000") and len(text) < MAX_TEXT + 40
    assert text.endswith(f"...[{600 - MAX_TEXT // 6} more characters]")
