"""Failure classification and the ProbeResult builder."""

from __future__ import annotations

import ssl

import pytest

from exporter.catalogue import core as C
from exporter.catalogue.base import family
from exporter.probe import Histogram, ProbeError, ProbeResult, Sample, classify_error


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


def test_histogram_buckets_are_inclusive_upper_bounds_and_cumulative() -> None:
    fam = family("test_latency_seconds", "histogram", "A test histogram.", buckets=(0.1, 1.0))
    h = Histogram(fam.buckets)
    for v in (0.1, 0.5, 5.0):  # on a bound, between bounds, above the last
        h.observe(v)
    s = h.sample(fam)
    assert s.cumulative_counts == (1, 2)
    assert s.count == 3 and s.sum == pytest.approx(5.6)
