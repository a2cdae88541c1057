"""Families of the passive FIX reader (kind ``fix_store``: a QuickFIX engine's FileStore
and FileLog). Every series carries ``session`` (the configured name) first; CompIDs
and BeginString appear only on ``fix_session_info``.
"""

from __future__ import annotations

from ...catalogue.base import family

S = "session"

MSG_TYPES: dict[str, str] = {
    "0": "heartbeat",
    "1": "test_request",
    "2": "resend_request",
    "3": "reject",
    "4": "sequence_reset",
    "5": "logout",
    "A": "logon",
    "D": "new_order_single",
    "8": "execution_report",
    "F": "order_cancel_request",
    "G": "order_cancel_replace_request",
    "9": "order_cancel_reject",
    "j": "business_message_reject",
    "Q": "dont_know_trade",
}
"""MsgType (35) -> ``msg_type`` label value; every other type counts as ``other``."""


def msg_type_label(msg_type: str) -> str:
    """The bounded ``msg_type`` label value for a MsgType (35) value."""
    return MSG_TYPES.get(msg_type, "other")


SESSION_INFO = family(
    "fix_session_info",
    "gauge",
    "Identity of the engine session read from its FileStore/FileLog; always 1.",
    S,
    "begin_string",
    "sender_comp_id",
    "target_comp_id",
)
LOGGED_ON = family(
    "fix_session_logged_on",
    "gauge",
    "1 if the engine's event log says the session is logged on, 0 after a logout or disconnect; "
    "absent until the log read shows either.",
    S,
)
LAST_LOGON = family(
    "fix_session_last_logon_timestamp_seconds",
    "gauge",
    "Unix time of the last successful logon in the event log read since the exporter started "
    "(plus backfill); absent when none was seen.",
    S,
)
NEXT_SENDER_SEQNUM = family(
    "fix_session_next_sender_seqnum",
    "gauge",
    "Next outgoing MsgSeqNum, from the store's .seqnums file.",
    S,
)
NEXT_TARGET_SEQNUM = family(
    "fix_session_next_target_seqnum",
    "gauge",
    "Next expected incoming MsgSeqNum, from the store's .seqnums file.",
    S,
)
STORE_CREATION = family(
    "fix_session_store_creation_timestamp_seconds",
    "gauge",
    "Unix time the store was created (.session file); a change means a sequence reset.",
    S,
)
STORE_INTEGRITY = family(
    "fix_session_store_integrity_ok",
    "gauge",
    "0 once a sequence number went backwards while the store's creation time did not change.",
    S,
)
SEQNUM_REGRESSIONS = family(
    "fix_session_seqnum_regressions_total",
    "counter",
    "Times a stored sequence number went backwards without a store reset.",
    S,
)
LAST_INBOUND = family(
    "fix_session_last_inbound_timestamp_seconds",
    "gauge",
    "Unix time the engine logged the last message received from the counterparty.",
    S,
)
LAST_OUTBOUND = family(
    "fix_session_last_outbound_timestamp_seconds",
    "gauge",
    "Unix time the engine logged the last message it sent.",
    S,
)
HEARTBEAT_INTERVAL = family(
    "fix_session_heartbeat_interval_seconds",
    "gauge",
    "HeartBtInt (108) of the latest Logon in the message log.",
    S,
)
HEARTBEAT_OVERDUE = family(
    "fix_session_heartbeat_overdue",
    "gauge",
    "1 while logged on and nothing was received for longer than HeartBtInt plus the grace; "
    "0 while logged on within it or logged out (no heartbeat owed); absent while logged_on is "
    "absent or no Logon HeartBtInt or inbound message was read yet.",
    S,
)
HEARTBEAT_JITTER = family(
    "fix_session_heartbeat_jitter_seconds",
    "gauge",
    "Mean absolute deviation of recent inbound heartbeat gaps from HeartBtInt.",
    S,
)
TEST_REQUEST_RTT = family(
    "fix_session_test_request_roundtrip_seconds",
    "gauge",
    "Last outbound TestRequest to the inbound Heartbeat with the same TestReqID, from the log.",
    S,
)
ORDER_ACK_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.12,
    0.25,
    0.5,
    1.0,
    2.5,
)
"""Ack latency buckets: 100 us (an engine answering on the same host) to 2.5 s;
0.12 is the desk's SLA threshold, so the share under it needs no interpolation."""
ORDER_ACK_LATENCY = family(
    "fix_session_order_ack_latency_seconds",
    "histogram",
    "Order entry (35=D/G/F) to the first answer with the same ClOrdID (11) in the other "
    "direction (35=8, or 35=9 for G/F), from FileLog times (microseconds in QuickFIX 1.16); "
    "answers later than ack_timeout are not observed.",
    S,
    buckets=ORDER_ACK_BUCKETS,
)
ORDERS_UNACKNOWLEDGED = family(
    "fix_session_orders_unacknowledged_total",
    "counter",
    "Order entries (35=D/G/F) not answered within ack_timeout, or dropped as the oldest "
    "while max_pending_orders were waiting.",
    S,
)
ORDERS_PENDING = family(
    "fix_session_orders_pending",
    "gauge",
    "Order entries (35=D/G/F) read from the log and still waiting for their answer.",
    S,
)
MESSAGES = family(
    "fix_session_messages_total",
    "counter",
    "Messages in the log by direction (inbound/outbound) and a fixed set of types.",
    S,
    "direction",
    "msg_type",
)
RESEND_REQUESTS = family(
    "fix_session_resend_requests_total",
    "counter",
    "ResendRequest (35=2) messages by direction.",
    S,
    "direction",
)
REJECTS = family(
    "fix_session_rejects_total",
    "counter",
    "Reject (35=3, level=session) and BusinessMessageReject (35=j, level=business) by direction.",
    S,
    "direction",
    "level",
)
SEQUENCE_RESETS = family(
    "fix_session_sequence_resets_total",
    "counter",
    "SequenceReset (35=4) by direction and mode (gap_fill with 123=Y, else reset).",
    S,
    "direction",
    "mode",
)
LOGONS = family(
    "fix_session_logons_total",
    "counter",
    "Logon attempts in the event log by result (success, failure).",
    S,
    "result",
)
DISCONNECTS = family("fix_session_disconnects_total", "counter", "Disconnects in the event log.", S)
HEARTBEAT_TIMEOUTS = family(
    "fix_session_heartbeat_timeouts_total",
    "counter",
    "'Timed out waiting for heartbeat' events in the event log.",
    S,
)
IN_SCHEDULE = family(
    "fix_session_in_schedule",
    "gauge",
    "1 inside the session's configured trading schedule (always 1 without one).",
    S,
)
LOG_BYTES_READ = family(
    "fix_session_log_bytes_read_total",
    "counter",
    "Bytes of the session's logs read by the exporter, by log (messages, event).",
    S,
    "log",
)
LOG_BACKLOG = family(
    "fix_session_log_backlog_bytes",
    "gauge",
    "Bytes of the session's log not read yet (the reader caps each cycle).",
    S,
    "log",
)
LOG_ROTATIONS = family(
    "fix_session_log_reopens_total",
    "counter",
    "Times a log was found rotated (new inode) or truncated and read again from its start.",
    S,
    "log",
)
LOG_UNPARSED = family(
    "fix_session_log_unparsed_lines_total",
    "counter",
    "Lines of the session's log skipped as no log lines (no valid time; in the messages log,"
    " no MsgType (35)), by log (messages, event).",
    S,
    "log",
)

FAMILIES = (
    SESSION_INFO,
    LOGGED_ON,
    LAST_LOGON,
    NEXT_SENDER_SEQNUM,
    NEXT_TARGET_SEQNUM,
    STORE_CREATION,
    STORE_INTEGRITY,
    SEQNUM_REGRESSIONS,
    LAST_INBOUND,
    LAST_OUTBOUND,
    HEARTBEAT_INTERVAL,
    HEARTBEAT_OVERDUE,
    HEARTBEAT_JITTER,
    TEST_REQUEST_RTT,
    ORDER_ACK_LATENCY,
    ORDERS_UNACKNOWLEDGED,
    ORDERS_PENDING,
    MESSAGES,
    RESEND_REQUESTS,
    REJECTS,
    SEQUENCE_RESETS,
    LOGONS,
    DISCONNECTS,
    HEARTBEAT_TIMEOUTS,
    IN_SCHEDULE,
    LOG_BYTES_READ,
    LOG_BACKLOG,
    LOG_ROTATIONS,
    LOG_UNPARSED,
)
