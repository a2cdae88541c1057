"""The FileStore (``store``): both ``.seqnums`` layouts, a torn file, and the integrity
latch when a sequence number goes backwards without a store reset (a restored or
copied store, which a running engine cannot be made to write)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from exporter.kinds.fix_store.probe import FixStoreState, collect
from exporter.kinds.fix_store.store import StoreHistory
from exporter.probe import ProbeError

from .support import PREFIX, store_target, values, write_store


def test_old_ten_digit_seqnums_format(tmp_path: Path) -> None:
    write_store(tmp_path, "0000000012 : 0000000034")
    target = store_target(tmp_path)
    v = values(collect(target, FixStoreState(target), time.time()))
    assert v[("next_sender_seqnum", ())] == 12
    assert v[("next_target_seqnum", ())] == 34
    assert v[("store_creation_timestamp_seconds", ())] == 1795401397  # 2026-11-23 02:36:37Z


def test_torn_seqnums_is_an_error_after_retries(tmp_path: Path) -> None:
    write_store(tmp_path, "00000000000000000005 : ")
    target = store_target(tmp_path)
    with pytest.raises(ProbeError) as err:
        collect(target, FixStoreState(target), time.time())
    assert err.value.reason == "protocol"


def test_seqnum_going_backwards_without_reset_breaks_integrity(tmp_path: Path) -> None:
    write_store(tmp_path, "00000000000000000050 : 00000000000000000060")
    target = store_target(tmp_path)
    state = FixStoreState(target)
    assert values(collect(target, state, time.time()))[("store_integrity_ok", ())] == 1
    write_store(tmp_path, "00000000000000000040 : 00000000000000000061")
    v = values(collect(target, state, time.time()))
    assert v[("store_integrity_ok", ())] == 0
    assert v[("seqnum_regressions_total", ())] == 1
    (tmp_path / f"{PREFIX}.seqnums").write_text("1 : 1")
    (tmp_path / f"{PREFIX}.session").write_text("20261124-00:00:00")  # a real reset
    v = values(collect(target, state, time.time()))
    assert v[("store_integrity_ok", ())] == 1
    assert v[("store_creation_timestamp_seconds", ())] == 1795478400


def test_a_new_store_clears_the_integrity_latch() -> None:
    history = StoreHistory()
    history.update(100, (50, 60))
    history.update(100, (50, 59))
    assert (history.integrity_ok, history.regressions) == (False, 1)
    history.update(100, (51, 61))  # moving on again does not clear it
    assert history.integrity_ok is False
    history.update(200, (1, 1))  # a reset: a new creation time
    assert (history.integrity_ok, history.regressions, history.seqnums) == (True, 1, (1, 1))
