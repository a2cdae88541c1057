"""The log tails and store-file parsers (``files``) on prepared files: seqnums layouts,
new lines only, torn writes, truncation, rotation, backfill and the read cap.

logrotate, copytruncate and an old QuickFIX version cannot be produced on demand
by a running engine, so the files are written here in the engine's exact format.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from exporter.kinds.fix_store.files import Tail, read_seqnums
from exporter.kinds.fix_store.probe import FixStoreState, collect

from .support import (
    PREFIX,
    fix,
    line,
    messages_log,
    order_lines,
    store_target,
    values,
    write_store,
)


@pytest.mark.parametrize(
    "text", ["00000000000000000005 : 00000000000000000007", "5:7", "0000000005 : 0000000007\n"]
)
def test_seqnums_layouts(tmp_path: Path, text: str) -> None:
    path = tmp_path / "s.seqnums"
    path.write_text(text)
    assert read_seqnums(path) == (5, 7)


def test_counts_only_new_lines_and_survives_truncation(tmp_path: Path) -> None:
    write_store(tmp_path)
    log = messages_log(tmp_path)
    now = time.time()
    log.write_text(order_lines(now - 100, 5))
    target = store_target(tmp_path)
    state = FixStoreState(target)
    v = values(collect(target, state, now))
    assert v[("messages_total", ("outbound", "new_order_single"))] == 5
    v = values(collect(target, state, now))  # nothing new: counters unchanged
    assert v[("messages_total", ("outbound", "new_order_single"))] == 5
    with log.open("a") as f:  # a torn write: half a line now, the rest later
        whole = line(now - 50, fix("8", "BROKER", 9, "150=F"))
        f.write(whole[:30])
        f.flush()
        v = values(collect(target, state, now))
        assert v[("messages_total", ("inbound", "execution_report"))] == 0
        f.write(whole[30:])
    v = values(collect(target, state, now))
    assert v[("messages_total", ("inbound", "execution_report"))] == 1
    assert v[("last_inbound_timestamp_seconds", ())] == pytest.approx(now - 50, abs=1e-3)
    log.write_text(order_lines(now - 10, 2))  # truncated in place (copytruncate), then 2 lines
    v = values(collect(target, state, now))
    assert v[("messages_total", ("outbound", "new_order_single"))] == 7
    assert v[("log_reopens_total", ("messages",))] == 1
    assert v[("log_backlog_bytes", ("messages",))] == 0


def test_rotation_drains_the_old_file_then_follows_the_new(tmp_path: Path) -> None:
    write_store(tmp_path)
    log = messages_log(tmp_path)
    now = time.time()
    log.write_text(order_lines(now - 100, 3))
    target = store_target(tmp_path)
    state = FixStoreState(target)
    collect(target, state, now)
    with log.open("a") as f:
        f.write(order_lines(now - 90, 2, first_seq=4))  # written just before rotation
    os.rename(log, tmp_path / f"{PREFIX}.messages.backup.log")
    log.write_text(order_lines(now - 80, 4, first_seq=6))
    v = values(collect(target, state, now))
    assert v[("messages_total", ("outbound", "new_order_single"))] == 3 + 2 + 4
    assert v[("log_reopens_total", ("messages",))] == 1


def test_first_read_starts_backfill_bytes_before_the_end(tmp_path: Path) -> None:
    write_store(tmp_path)
    log = messages_log(tmp_path)
    now = time.time()
    log.write_text(order_lines(now - 1000, 500))
    line_len = len(log.read_bytes().splitlines(keepends=True)[-1])  # the last 10 are equal
    target = store_target(tmp_path, backfill_bytes=10 * line_len + 5)
    state = FixStoreState(target)
    v = values(collect(target, state, now))
    assert v[("messages_total", ("outbound", "new_order_single"))] == 10  # partial line skipped
    assert v[("log_bytes_read_total", ("messages",))] == 10 * line_len + 5


def test_read_cap_leaves_a_backlog_for_the_next_cycle(tmp_path: Path) -> None:
    write_store(tmp_path)
    log = messages_log(tmp_path)
    now = time.time()
    target = store_target(tmp_path, max_read_bytes=4096)
    state = FixStoreState(target)
    collect(target, state, now)  # opened while empty: everything after is new
    log.write_text(order_lines(now - 1000, 200))
    size = log.stat().st_size
    v = values(collect(target, state, now))
    assert v[("log_backlog_bytes", ("messages",))] == size - 4096
    while v[("log_backlog_bytes", ("messages",))] > 0:
        v = values(collect(target, state, now))
    assert v[("messages_total", ("outbound", "new_order_single"))] == 200


def test_tail_of_a_missing_file_reads_nothing(tmp_path: Path) -> None:
    tail = Tail(tmp_path / "absent.log", backfill=0)
    assert tail.read_lines(1024) == []
    assert tail.backlog == 0
