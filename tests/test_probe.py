"""Failure classification and the ProbeResult builder."""

from __future__ import annotations

import ssl

import pytest

from exporter.catalogue import core as C
from exporter.probe import ProbeError, ProbeResult, Sample, classify_error


def _wrapped(inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise RuntimeError("client library error") from exc
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ProbeError("auth", "x"), "auth"),
        (TimeoutError(), "timeout"),
        (TimeoutError(), "timeout"),
        (ConnectionRefusedError(), "refused"),
        (_wrapped(ConnectionRefusedError()), "refused"),
        (_wrapped(TimeoutError()), "timeout"),
        (ConnectionResetError(), "protocol"),
        (ssl.SSLError(), "protocol"),
        (ValueError("bad reply"), "protocol"),
        (KeyError("x"), "other"),
    ],
)
def test_generic_classification(exc: BaseException, reason: str) -> None:
    assert classify_error(exc, lambda e: None) == reason


def test_kind_classifier_comes_after_probe_errors_and_socket_causes() -> None:
    assert classify_error(KeyError("x"), lambda e: "auth") == "auth"
    assert classify_error(ProbeError("config", "x"), lambda e: "auth") == "config"
    assert classify_error(_wrapped(ConnectionRefusedError()), lambda e: "auth") == "refused"


def test_result_skips_unknown_values_and_checks_label_count() -> None:
    r = ProbeResult()
    r.add(C.UP, None, "redis", "a")
    assert r.samples == []
    r.add(C.UP, True, "redis", "a")
    assert r.samples == [Sample(C.UP, ("redis", "a"), 1.0)]
    with pytest.raises(ValueError, match="takes labels"):
        r.add(C.UP, 1, "redis")
