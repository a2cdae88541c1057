"""The fix_store target's configuration errors (``config``), one bad field each."""

from __future__ import annotations

import pytest

from exporter.config import ConfigError, parse


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "sender_comp_id: BROKER",
            "cfg.yml: fix_store[0]: sender_comp_id and target_comp_id must differ",
        ),
        (
            "sender_comp_id: ENGINE\n    max_read_bytes: 10",
            "cfg.yml: fix_store[0].max_read_bytes: Input should be greater than or equal to 4096",
        ),
        (
            "sender_comp_id: ENGINE\n    ack_timeout: 0s",
            "cfg.yml: fix_store[0].ack_timeout: must be greater than zero",
        ),
        (
            "sender_comp_id: ENGINE\n    ack_timeout: 2d",
            "cfg.yml: fix_store[0].ack_timeout: expected a duration such as 15s or 500ms",
        ),
        (
            "sender_comp_id: ENGINE\n    ack_timeout: 25h",
            "cfg.yml: fix_store[0].ack_timeout: Input should be less than or equal to 86400",
        ),
        (
            "sender_comp_id: ENGINE\n    max_pending_orders: 0",
            "cfg.yml: fix_store[0].max_pending_orders: Input should be greater than or equal to 1",
        ),
        (
            "sender_comp_id: ENGINE\n    schedule: {weekdays: [funday]}",
            "cfg.yml: fix_store[0].schedule.weekdays[0]: Input should be 'mon', 'tue', 'wed', "
            "'thu', 'fri', 'sat' or 'sun'",
        ),
        (
            "sender_comp_id: ENGINE\n    schedule: {start: '25:00'}",
            "cfg.yml: fix_store[0].schedule.start: Input should be in a valid time format, "
            "hour value is outside expected range of 0-23",
        ),
    ],
)
def test_config_errors(body: str, message: str) -> None:
    text = f"""
fix_store:
  - name: broker
    store_path: /var/lib/quickfix/store
    target_comp_id: BROKER
    {body}
"""
    with pytest.raises(ConfigError) as err:
        parse(text, "cfg.yml")
    assert err.value.lines() == [message]
