"""The parsers of the backups sources (exporter/kinds/backups/sources.py): manifests,
``pgbackrest info --output=json`` and restore-drill records, with the exact
protocol error for each way one is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exporter.kinds.backups.sources import (
    parse_drill,
    parse_manifest,
    parse_pgbackrest,
    timestamp,
    wal_position,
)
from exporter.probe import ProbeError


def _raw(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _protocol(fn: Any, *args: Any) -> str:
    with pytest.raises(ProbeError) as err:
        fn(*args)
    assert err.value.reason == "protocol"
    return str(err.value)


def test_timestamps_are_unix_seconds_or_rfc3339_with_an_offset() -> None:
    assert timestamp(1700000000, "t") == 1700000000.0
    assert timestamp("2023-11-14T22:13:20Z", "t") == 1700000000.0
    assert timestamp("2023-11-14T23:13:20+01:00", "t") == 1700000000.0
    for bad in ("2023-11-14T22:13:20", "monday", 0, -5, float("nan"), None):
        assert _protocol(timestamp, bad, "t") == (
            "t: expected Unix seconds or RFC 3339 with an offset"
        )
    assert _protocol(timestamp, True, "t") == "t: expected a timestamp"


def test_a_manifest_becomes_a_backup() -> None:
    doc = {
        "file": "a.dump",
        "type": "weekly",
        "status": "success",
        "start": 100,
        "finish": "1970-01-01T00:03:20Z",
        "size_bytes": 42,
        "checksum": {"algorithm": "SHA256", "value": "ABCD"},
    }
    b = parse_manifest(_raw(doc), "m")
    assert (b.type, b.ok, b.start, b.finish, b.size) == ("other", True, 100.0, 200.0, 42.0)
    assert (b.file, b.checksum, b.running, b.when) == ("a.dump", ("sha256", "abcd"), False, 200.0)
    running = parse_manifest(_raw({"file": "b.dump", "status": "running", "start": 5}), "m")
    assert (running.running, running.ok, running.when) == (True, False, 5.0)


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"file": "a", "status": "done", "finish": 1}, "status must be success, failed or running"),
        ({"file": "../a", "status": "failed", "finish": 1}, "file must name a backup file"),
        ({"file": "/a", "status": "failed", "finish": 1}, "file must name a backup file"),
        ({"status": "failed", "finish": 1}, "file must name a backup file"),
        ({"file": "a", "status": "success", "start": 1}, "a successful backup needs finish"),
        ({"file": "a", "status": "failed"}, "needs start or finish"),
        ({"file": "a", "status": "failed", "finish": 1, "size_bytes": -1}, "non-negative"),
        (
            {"file": "a", "status": "failed", "finish": 1, "checksum": {"algorithm": "sha256"}},
            "checksum needs algorithm and value",
        ),
        (
            {
                "file": "a",
                "status": "failed",
                "finish": 1,
                "checksum": {"algorithm": "crc", "value": "1"},
            },
            "unknown checksum algorithm 'crc'",
        ),
        ([], "expected a JSON object"),
    ],
)
def test_a_bad_manifest_says_what_is_wrong(doc: Any, problem: str) -> None:
    message = _protocol(parse_manifest, _raw(doc), "m")
    assert message.startswith("m: ") and problem in message
    assert _protocol(parse_manifest, b"{not json", "m").startswith("m: not valid JSON")


def _stanza(**fields: Any) -> dict[str, Any]:
    return {"name": "main", "status": {"code": 0, "message": "ok"}, **fields}


def test_pgbackrest_info_gives_the_stanza_its_backups_and_wal_range() -> None:
    backups = [
        {"type": "full", "timestamp": {"start": 10, "stop": 20}, "info": {"size": 5}},
        {
            "type": "incr",
            "error": True,
            "timestamp": {"start": 30, "stop": 40},
            "info": {"size": 6, "repository": {"delta": 2}},
        },
    ]
    archive = [
        {"id": "15-1", "min": "000000010000000000000003", "max": "000000010000000000000009"},
        {"id": "15-2", "min": "000000020000000000000009", "max": "00000002000000000000000B"},
        {"id": "bad", "min": "junk", "max": "junk"},
    ]
    status = {"code": 0, "lock": {"backup": {"held": True}}}
    doc = [{"name": "other"}, _stanza(status=status, backup=backups, archive=archive)]
    info = parse_pgbackrest(_raw(doc), "main")
    assert (info.status_code, info.backup_running) == (0, True)
    assert [(b.type, b.ok, b.finish, b.repo_size) for b in info.backups] == [
        ("full", True, 20.0, None),
        ("incr", False, 40.0, 2.0),
    ]
    assert (info.wal_min, info.wal_max, info.archive_id) == (
        "000000010000000000000003",
        "00000002000000000000000B",
        "15-2",
    )
    bare = parse_pgbackrest(_raw([_stanza()]), "main")
    assert (bare.backup_running, bare.backups, bare.wal_max, bare.archive_id) == (
        None,
        [],
        None,
        None,
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"name": "main"}, "pgbackrest info: expected a JSON list of stanzas"),
        ([_stanza(name="other")], "pgbackrest info: stanza 'main' not in the output"),
        ([_stanza(status="ok")], "pgbackrest info: status: expected a JSON object"),
        ([_stanza(status={"code": "0"})], "pgbackrest info: status.code is not a number"),
        ([_stanza(status={"code": True})], "pgbackrest info: status.code is not a number"),
        (
            [_stanza(backup=[{"type": "full"}])],
            "pgbackrest info: backup timestamp: expected a JSON object",
        ),
    ],
)
def test_bad_pgbackrest_info_says_what_is_wrong(doc: Any, message: str) -> None:
    assert _protocol(parse_pgbackrest, _raw(doc), "main") == message


def test_wal_positions_count_bytes_from_the_segment_name() -> None:
    assert wal_position("000000010000000000000003", 16 << 20) == (1, 3 * (16 << 20))
    assert wal_position("0000000A00000002000000FF", 16 << 20) == (10, 2 << 32 | 255 * (16 << 20))


def test_a_restore_drill_record() -> None:
    raw = _raw({"timestamp": 50, "result": "failure", "rows_verified": 7, "checksums_failed": 1})
    d = parse_drill(raw, "r")
    assert (d.timestamp, d.ok, d.duration, d.rows_verified, d.checksums_failed) == (
        50.0,
        False,
        None,
        7.0,
        1.0,
    )
    assert _protocol(parse_drill, _raw({"result": "ok", "timestamp": 1}), "r") == (
        "r: result must be success or failure"
    )
    assert _protocol(parse_drill, _raw({"result": "success"}), "r") == "r: timestamp is missing"
