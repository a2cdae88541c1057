"""Properties of the QuickFIX file readers (``exporter.kinds.fix_store.files``) and of the
``fix_store`` cycle that uses them.

Any bytes in the store and log files give series or ProbeError("protocol"), never
another exception; what QuickFIX writes (``.seqnums`` in both layouts, ``.session``,
``TIME : TEXT`` log lines appended in any pieces) reads back as what was written; a
line is handed over whole or not at all, never a fragment.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from hypothesis import example, given
from hypothesis import strategies as st

from exporter.kinds.fix_store import files as fix_files
from exporter.kinds.fix_store.config import FixStoreTarget
from exporter.kinds.fix_store.files import (
    Clock,
    Tail,
    parse_utc_seconds,
    read_creation_time,
    read_seqnums,
)
from exporter.kinds.fix_store.probe import FixStoreState, collect
from exporter.probe import ProbeError, ProbeResult

from ...properties import examples

PREFIX = "FIX.4.4-ENGINE-VENUE"
NOW = 1795401397.0
SOH = b"\x01"

datetimes = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9999, 12, 31))
seqnums = st.integers(0, 10**20 - 1)
line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))


@contextlib.contextmanager
def _no_retry_pause() -> Iterator[None]:
    """The torn-read retries sleep a few ms each; a property reads thousands of files."""
    with mock.patch.object(fix_files, "time", mock.Mock(sleep=lambda _: None)):
        yield


def _stamp(t: dt.datetime) -> bytes:
    return t.strftime("%Y%m%d-%H:%M:%S").encode()


def _unix(t: dt.datetime) -> int:
    return calendar.timegm(t.timetuple())


@examples(500)
@given(st.binary(max_size=24) | st.builds(_stamp, datetimes).map(lambda b: b[:-2] + b"99"))
@example(b"20261199-25:61:61")  # read as 2027-03-10: fields out of range were accepted
def test_a_timestamp_parses_only_if_it_formats_back_to_itself(text: bytes) -> None:
    seconds = parse_utc_seconds(text)
    if seconds is not None:
        assert _stamp(dt.datetime.fromtimestamp(seconds, dt.UTC)) == text


@examples(300)
@given(datetimes)
def test_a_timestamp_round_trips(t: dt.datetime) -> None:
    assert parse_utc_seconds(_stamp(t)) == _unix(t)


@examples(300)
@given(st.binary(max_size=64), st.binary(max_size=16))
@example(b"20261123-02:36:37.", b"9" * 400)  # OverflowError: 10**400 is no float
@example(b"20261123-02:36:37.", b"9" * 5000)  # ValueError: more digits than int() takes
def test_the_clock_reads_any_bytes_as_a_time_or_none(head: bytes, tail: bytes) -> None:
    value = Clock()(head + tail)
    assert value is None or isinstance(value, float)


@examples(300)
@given(datetimes, st.integers(0, 999_999_999), st.sampled_from([3, 6, 9]))
def test_log_times_round_trip_to_the_digits_written(
    t: dt.datetime, nanos: int, digits: int
) -> None:
    frac = f"{nanos:09d}"[:digits]
    text = _stamp(t) + b"." + frac.encode()
    assert Clock()(text) == _unix(t) + int(frac) / 10**digits


@examples(200)
@given(seqnums, seqnums, st.sampled_from([10, 20]), st.sampled_from(["", "\n", "\r\n"]))
def test_seqnums_round_trip_in_both_layouts(sender: int, target: int, width: int, end: str) -> None:
    if width == 10:
        sender, target = sender % 10**10, target % 10**10
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{PREFIX}.seqnums"
        path.write_text(f"{sender:0{width}d} : {target:0{width}d}{end}")
        assert read_seqnums(path) == (sender, target)


@examples(300)
@given(st.binary(max_size=64))
@example(b"1" * 5000 + b":1")  # int() refused it with its own error, before the retries
def test_seqnums_of_any_bytes_read_or_fail_with_a_value_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp, _no_retry_pause():
        path = Path(tmp) / f"{PREFIX}.seqnums"
        path.write_bytes(data)
        try:
            sender, target = read_seqnums(path)
        except ValueError as exc:
            assert str(exc).startswith(f"{path.name}: ")
        else:
            assert 0 <= sender < 10**20 and 0 <= target < 10**20


@examples(200)
@given(datetimes, st.sampled_from(["", "\n"]))
def test_session_creation_time_round_trips(t: dt.datetime, end: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{PREFIX}.session"
        path.write_bytes(_stamp(t) + end.encode())
        assert read_creation_time(path) == _unix(t)


def _whole_lines(data: bytes) -> list[bytes]:
    """The complete lines of ``data`` as Tail hands them over: no newline, no CR."""
    lines = data.split(b"\n")[:-1]
    return [line.removesuffix(b"\r") for line in lines if line.removesuffix(b"\r")]


@examples(200)
@given(
    st.lists(line_bytes.map(lambda b: b + b"\n") | line_bytes, max_size=30),
    st.integers(1, 64),
    st.integers(8, 48),
)
@example([b"\r\n", b"a\n"], 64, 48)  # a line of one CR was handed over empty
@example([b"x" * 40, b"y" * 40 + b"\n", b"ok\n"], 64, 16)  # the tail of a dropped line
def test_appended_pieces_come_back_as_whole_lines_in_order(
    pieces: list[bytes], max_bytes: int, max_line: int
) -> None:
    """Pieces appended between reads (a torn write, several lines at once, a line
    longer than the limit) give each line once, whole; over-long lines may be
    dropped, but no fragment of one is ever handed over."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(fix_files, "_MAX_LINE_BYTES", max_line),
    ):
        path = Path(tmp) / "m.log"
        path.write_bytes(b"")
        tail, got = Tail(path, backfill=1 << 20), []
        for piece in pieces:
            with path.open("ab") as f:
                f.write(piece)
            got += tail.read_lines(max_bytes)
        for _ in range(sum(map(len, pieces)) // max_bytes + 1):
            got += tail.read_lines(max_bytes)
        tail.close()
    written = _whole_lines(b"".join(pieces))
    short = [line for line in written if len(line) <= max_line]
    assert [line for line in got if len(line) <= max_line] == short
    it = iter(written)
    assert all(line in it for line in got)  # a subsequence of whole lines, in order


def _fix(msg_type: str, sender: str, seq: int) -> bytes:
    target = "VENUE" if sender == "ENGINE" else "ENGINE"
    fields = [f"35={msg_type}", f"49={sender}", f"56={target}", f"34={seq}"]
    return SOH.join([b"8=FIX.4.4", b"9=0", *(f.encode() for f in fields), b"10=000"]) + SOH


@examples(150)
@given(
    st.lists(
        st.tuples(st.sampled_from(["0", "1", "2", "5", "D", "8", "j"]), st.booleans(), datetimes),
        min_size=1,
        max_size=20,
    )
)
def test_generated_message_logs_are_counted_as_written(
    messages: list[tuple[str, bool, dt.datetime]],
) -> None:
    """Messages written in QuickFIX's line format come back as counts per direction
    and message type, and the newest time in each direction."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _store(root, b"00000000000000000001 : 00000000000000000001", b"20261123-02:36:37")
        log = b"".join(
            _stamp(t) + b".000000000 : " + _fix(m, "ENGINE" if out else "VENUE", i) + b"\n"
            for i, (m, out, t) in enumerate(messages, 1)
        )
        (root / f"{PREFIX}.messages.current.log").write_bytes(log)
        target = _target(root)
        state = FixStoreState(target)
        collect(target, state, NOW)
    t = state.tracker
    assert t.unparsed == {"messages": 0, "event": 0}  # every line written is a log line
    for out in (True, False):
        mine = [(m, ts) for m, o, ts in messages if o == out]
        direction = "outbound" if out else "inbound"
        assert sum(n for (d, _), n in t.messages.items() if d == direction) == len(mine)
        last = t.last_out if out else t.last_in
        assert last == (float(_unix(mine[-1][1])) if mine else None)


def _store(root: Path, seqnums: bytes, session: bytes) -> None:
    (root / f"{PREFIX}.seqnums").write_bytes(seqnums)
    (root / f"{PREFIX}.session").write_bytes(session)


def _target(root: Path) -> FixStoreTarget:
    return FixStoreTarget.model_validate(
        {
            "name": "venue",
            "store_path": root,
            "sender_comp_id": "ENGINE",
            "target_comp_id": "VENUE",
            "interval": 5,
            "timeout": 1,
        }
    )


def _log_bytes() -> st.SearchStrategy[bytes]:
    """Log text that is mostly line-shaped: times, `` : ``, FIX fields, events, junk."""
    stamp = st.builds(_stamp, datetimes) | st.binary(max_size=20)
    frac = st.sampled_from([b"", b".", b".123", b".000000000", b".x", b"." + b"9" * 400])
    body = st.lists(
        st.sampled_from(
            [b"8=FIX.4.4", b"35=A", b"35=0", b"35=1", b"35=D", b"35=8", b"35=4", b"49=ENGINE",
             b"49=VENUE", b"11=C1", b"108=30", b"108=" + b"9" * 400, b"112=t", b"123=Y",
             b"43=Y", b"Received logon request", b"Responding to logon request",
             b"Disconnecting", b"Timed out waiting for heartbeat", b"\xff\xfe", b""]
        ),
        max_size=8,
    ).map(SOH.join)  # fmt: skip
    line = st.tuples(stamp, frac, st.sampled_from([b" : ", b":", b""]), body).map(b"".join)
    return st.lists(line | st.binary(max_size=40), max_size=12).map(b"\n".join)


@examples(200, deadline_ms=5000)
@given(
    st.binary(max_size=48) | st.just(b"00000000000000000002 : 00000000000000000003"),
    st.binary(max_size=24) | st.just(b"20261123-02:36:37"),
    _log_bytes(),
    _log_bytes(),
    _log_bytes(),
)
@example(b"1:1", b"", b"20261123-02:36:37." + b"9" * 400 + b" : \x0135=0\x01\n", b"", b"")
def test_any_bytes_in_the_files_give_series_or_a_protocol_error(
    seqnums: bytes, session: bytes, messages: bytes, events: bytes, more: bytes
) -> None:
    """Two cycles (the second after more bytes were appended to both logs)."""
    with tempfile.TemporaryDirectory() as tmp, _no_retry_pause():
        root = Path(tmp)
        _store(root, seqnums, session)
        (root / f"{PREFIX}.messages.current.log").write_bytes(messages)
        (root / f"{PREFIX}.event.current.log").write_bytes(events)
        target = _target(root)
        state = FixStoreState(target)
        for cycle in range(2):
            try:
                assert isinstance(collect(target, state, NOW + cycle), ProbeResult)
            except ProbeError as exc:
                assert exc.reason == "protocol", exc
            for name in ("messages", "event"):
                with (root / f"{PREFIX}.{name}.current.log").open("ab") as f:
                    f.write(more)
        state._close()
