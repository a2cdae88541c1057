"""Families of the active FIX probe (kind ``fix``: a monitoring session that logs on
to a venue). Every series carries ``session`` (the configured name) first; CompIDs
and BeginString appear only on ``fix_probe_info``.
"""

from __future__ import annotations

from ...catalogue.base import family

S = "session"

FAILURE_REASONS: tuple[str, ...] = (
    "refused",
    "timeout",
    "logon_rejected",
    "logout_received",
    "garbled",
    "bad_checksum",
    "seqnum_too_low",
    "out_of_schedule",
    "other",
)
"""The fixed set of ``reason`` values of the active probe's failure series."""


PROBE_INFO = family(
    "fix_probe_info",
    "gauge",
    "Identity of the monitoring session; always 1.",
    S,
    "begin_string",
    "sender_comp_id",
    "target_comp_id",
)
PROBE_SUCCESS = family(
    "fix_probe_success",
    "gauge",
    "1 if the last monitoring session logged on, answered its TestRequest and logged out.",
    S,
)
PROBE_FAILURE = family(
    "fix_probe_failure",
    "gauge",
    "1 for the reason the last monitoring session failed, 0 for the others (all 0 on success).",
    S,
    "reason",
)
PROBE_FAILURES = family(
    "fix_probe_failures_total",
    "counter",
    "Monitoring sessions that failed, by reason, since the exporter started.",
    S,
    "reason",
)
PROBE_CONNECT = family(
    "fix_probe_connect_seconds", "gauge", "Time to open the TCP (and TLS) connection.", S
)
PROBE_LOGON = family(
    "fix_probe_logon_seconds", "gauge", "Time from sending Logon (35=A) to the acceptor's Logon.", S
)
PROBE_TEST_REQUEST = family(
    "fix_probe_test_request_roundtrip_seconds",
    "gauge",
    "Time from sending TestRequest (35=1) to the Heartbeat (35=0) carrying the same TestReqID.",
    S,
)
PROBE_LOGOUT = family(
    "fix_probe_logout_seconds",
    "gauge",
    "Time from sending Logout (35=5) to the acceptor's Logout (absent if it just closed).",
    S,
)
PROBE_IN_SCHEDULE = family(
    "fix_probe_in_schedule",
    "gauge",
    "1 inside the session's configured trading schedule (always 1 without one).",
    S,
)
PROBE_PEER_SEQNUM = family(
    "fix_probe_peer_logon_seqnum",
    "gauge",
    "MsgSeqNum (34) of the acceptor's Logon: its next outgoing sequence number on this session.",
    S,
)

FAMILIES = (
    PROBE_INFO,
    PROBE_SUCCESS,
    PROBE_FAILURE,
    PROBE_FAILURES,
    PROBE_CONNECT,
    PROBE_LOGON,
    PROBE_TEST_REQUEST,
    PROBE_LOGOUT,
    PROBE_IN_SCHEDULE,
    PROBE_PEER_SEQNUM,
)
