"""On-demand probes: the target made from a module, and its deadline."""

from __future__ import annotations

import pytest

from exporter.config import ModuleConfig
from exporter.on_demand import (
    ProbeRequestError,
    label_safe,
    probe_timeout,
    scrape_timeout,
    target_spec,
)

MODULE = ModuleConfig(kind="redis", allowed_targets=[r".*"], timeout=5.0)


def test_label_safe_names() -> None:
    assert label_safe("127.0.0.1:6379") == "127.0.0.1:6379"
    assert label_safe("http://h:1/health?x=1") == "http:__h:1_health_x_1"
    assert label_safe("///") == "target"
    assert len(label_safe("a" * 500)) == 128


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, 5.0), ("", 5.0), ("10", 5.0), ("3", 2.5), ("0.8", 0.4), ("0", 5.0), ("-1", 5.0)],
)
def test_the_deadline_follows_the_scrape_timeout_header(
    header: str | None, expected: float
) -> None:
    assert probe_timeout(MODULE, header) == pytest.approx(expected)


@pytest.mark.parametrize("header", ["nan", "inf", "x"])
def test_a_header_that_is_no_finite_number_is_a_bad_request(header: str) -> None:
    with pytest.raises(ProbeRequestError) as err:
        scrape_timeout(header)
    assert err.value.status == 400


def test_the_target_is_the_module_s_template_with_the_address() -> None:
    spec = target_spec(MODULE, "127.0.0.1:6379", 2.0)
    assert spec.name == "127.0.0.1:6379"
    assert (spec.interval_s, spec.timeout_s) == (4.0, 2.0)
    assert spec.address == "127.0.0.1:6379"  # type: ignore[attr-defined]
    with pytest.raises(ProbeRequestError) as err:
        target_spec(MODULE, "not an address", 2.0)
    assert err.value.status == 400 and str(err.value).startswith("bad target: ")
