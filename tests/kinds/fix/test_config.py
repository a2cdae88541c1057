"""The fix target's configuration (``config``): one bad field per error, and the check
that keeps a monitoring session off a production session's CompIDs."""

from __future__ import annotations

import pytest

from exporter.config import ConfigError, parse
from exporter.kinds.fix.config import FixTarget, production_compids_reused
from exporter.kinds.fix_store.config import FixStoreTarget


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "sender_comp_id: VENUE",
            "cfg.yml: fix[0]: sender_comp_id and target_comp_id must differ",
        ),
        (
            'sender_comp_id: "MON ITOR"',
            "cfg.yml: fix[0].sender_comp_id: String should match pattern '^[!-<>-~]{1,64}$'",
        ),
        (
            "sender_comp_id: MONITOR\n    schedule: {timezone: Mars/Olympus}",
            "cfg.yml: fix[0].schedule.timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            "sender_comp_id: MONITOR\n    password: hunter2",
            "cfg.yml: fix[0].password: inline secrets are not accepted: use a ${ENV_VAR} "
            "reference or the *_file field",
        ),
    ],
)
def test_config_errors(body: str, message: str) -> None:
    text = f"""
fix:
  - name: venue
    address: 127.0.0.1:9876
    target_comp_id: VENUE
    {body}
"""
    with pytest.raises(ConfigError) as err:
        parse(text, "cfg.yml")
    assert err.value.lines() == [message]


def _fix(name: str, sender: str, target: str) -> FixTarget:
    ids = {"sender_comp_id": sender, "target_comp_id": target}
    return FixTarget.model_validate({"name": name, "address": "127.0.0.1:9876", **ids})


def _store(name: str, sender: str, target: str) -> FixStoreTarget:
    ids = {"sender_comp_id": sender, "target_comp_id": target}
    return FixStoreTarget.model_validate({"name": name, "store_path": "/srv/fix", **ids})


def test_production_compids_are_refused_in_either_direction() -> None:
    stores = [_store("desk", "DESK", "VENUE"), _store("gateway", "GW", "VENUE")]
    monitors = [
        _fix("ok", "MONITOR", "VENUE"),
        _fix("same", "DESK", "VENUE"),
        _fix("reversed", "VENUE", "GW"),
    ]
    problems = production_compids_reused({"fix": monitors, "fix_store": stores})
    reused = "reuses the CompIDs of production session"
    own = "a monitoring session needs a CompID of its own"
    assert problems == [
        ("fix[1].sender_comp_id", f"{reused} fix_store[0] (desk); {own}"),
        ("fix[2].sender_comp_id", f"{reused} fix_store[1] (gateway); {own}"),
    ]
    assert production_compids_reused({"fix": monitors}) == []
    assert production_compids_reused({"fix_store": stores}) == []
